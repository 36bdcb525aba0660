//! The single event type flowing through the console's channel, and the effects the app asks
//! the runtime to perform.

use chrono::{DateTime, Utc};
use crossterm::event::{KeyEvent, MouseEvent};
use serde_json::Value;

pub use crate::cache::Resource;
use crate::client::ClientError;

/// What a POST was for, so its answer lands in the right place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostOp {
    DryRun,
    Confirm,
}

/// Everything the app reacts to.
#[derive(Debug, Clone)]
pub enum Event {
    Key(KeyEvent),
    /// A click or the wheel (mouse capture is on while the console runs).
    Mouse(MouseEvent),
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
    /// Put this text on the clipboard: the runtime writes the OSC 52 sequence through the
    /// terminal backend ([`crate::clipboard`]); headless runs have no terminal to write to.
    CopyToClipboard(String),
}
