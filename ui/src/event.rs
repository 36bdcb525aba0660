//! The single event type flowing through the console's channel, and the effects the app asks
//! the runtime to perform.

use chrono::{DateTime, Utc};
use crossterm::event::KeyEvent;
use serde_json::Value;

use crate::client::ClientError;

/// Optional areas that may not be installed on a given backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Area {
    Costs,
    Security,
    Dr,
    Forecast,
    Integrations,
}

impl Area {
    pub const ALL: [Area; 5] = [
        Area::Costs,
        Area::Security,
        Area::Dr,
        Area::Forecast,
        Area::Integrations,
    ];

    /// The route probed to find out whether the area exists.
    pub fn route(self) -> &'static str {
        match self {
            Area::Costs => "/api/v1/costs/summary",
            Area::Security => "/api/v1/security/findings",
            Area::Dr => "/api/v1/dr/status",
            Area::Forecast => "/api/v1/forecast",
            Area::Integrations => "/api/v1/integrations",
        }
    }

    pub fn index(self) -> usize {
        Area::ALL.iter().position(|a| *a == self).unwrap_or(0)
    }
}

/// A backend resource the console keeps a copy of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource {
    Telemetry,
    History,
    Verbs,
    Automations,
    JobRuns,
    QueueHealth,
    QueueJobs,
    Audit,
    Summary,
    Area(Area),
}

impl Resource {
    pub const ALL: [Resource; 14] = [
        Resource::Telemetry,
        Resource::History,
        Resource::Verbs,
        Resource::Automations,
        Resource::JobRuns,
        Resource::QueueHealth,
        Resource::QueueJobs,
        Resource::Audit,
        Resource::Summary,
        Resource::Area(Area::Costs),
        Resource::Area(Area::Security),
        Resource::Area(Area::Dr),
        Resource::Area(Area::Forecast),
        Resource::Area(Area::Integrations),
    ];

    /// Base route (queue jobs get their `state` filter appended by the app).
    pub fn route(self) -> &'static str {
        match self {
            Resource::Telemetry => "/api/v1/ops/telemetry",
            Resource::History => "/api/v1/ops/telemetry/history?minutes=60",
            Resource::Verbs => "/api/v1/ops/verbs",
            Resource::Automations => "/api/v1/automations/status",
            Resource::JobRuns => "/api/v1/jobs/runs?limit=50",
            Resource::QueueHealth => "/api/v1/queue/health",
            Resource::QueueJobs => "/api/v1/queue/jobs",
            Resource::Audit => "/api/v1/audit/chain",
            Resource::Summary => "/api/v1/status/summary",
            Resource::Area(a) => a.route(),
        }
    }

    /// How long a good answer stays fresh before it is fetched again.
    pub fn refresh_secs(self) -> i64 {
        match self {
            Resource::Telemetry | Resource::QueueHealth | Resource::QueueJobs => 5,
            Resource::History | Resource::Automations | Resource::JobRuns => 10,
            Resource::Audit | Resource::Summary => 15,
            Resource::Verbs | Resource::Area(_) => 60,
        }
    }

    pub fn index(self) -> usize {
        Resource::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }
}

/// What a POST was for, so its answer lands in the right place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostOp {
    DryRun,
    Confirm,
    RunJob(String),
    RetryQueueJob(String),
    PurgeDlq,
}

/// Everything the app reacts to.
#[derive(Debug, Clone)]
pub enum Event {
    Key(KeyEvent),
    Resize(u16, u16),
    /// Clock tick (also drives scheduled refreshes and retry backoff).
    Tick(DateTime<Utc>),
    Fetched {
        resource: Resource,
        result: Result<Value, ClientError>,
        at: DateTime<Utc>,
    },
    Posted {
        op: PostOp,
        result: Result<Value, ClientError>,
        at: DateTime<Utc>,
    },
}

/// Work the app asks for; the runtime runs it on tokio tasks and answers with an [`Event`].
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Fetch {
        resource: Resource,
        path: String,
    },
    Post {
        op: PostOp,
        path: String,
        body: Value,
    },
    /// Switch the `X-Tenant-Id` header for all later requests.
    SetTenant(Option<String>),
}
