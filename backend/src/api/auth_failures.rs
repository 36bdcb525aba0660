//! Failed authentications (401) per client address: rate-limited, and logged as one
//! summary line per interval instead of one line per request, so a client hammering
//! with bad keys costs neither key lookups nor log volume without bound.
//!
//! An address over its budget (`[server] auth_failures_per_minute`, burst
//! `auth_failures_burst`) gets 429 with `Retry-After` *before* its key is looked at, until
//! the budget refills; valid keys from other addresses are unaffected.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::server::ServerSection;

pub const AUTH_FAILURES: &str = "echopilot_http_auth_failures_total";

/// Addresses named in one summary line, at most (the rest are counted, not named).
const NAMED_ADDRESSES: usize = 5;
/// Distinct addresses counted per interval, at most (more are folded into `other`).
const TRACKED_ADDRESSES: usize = 10_000;

/// Why a request was refused (the `reason` label of [`AUTH_FAILURES`]).
#[derive(Debug, Clone, Copy)]
pub enum Failure {
    MissingKey,
    InvalidKey,
    RevokedKey,
    Throttled,
}

/// The [`Failure`] names, in order.
const FAILURES: &[&str] = &["missing_key", "invalid_key", "revoked_key", "throttled"];

impl Failure {
    fn as_str(self) -> &'static str {
        match self {
            Failure::MissingKey => "missing_key",
            Failure::InvalidKey => "invalid_key",
            Failure::RevokedKey => "revoked_key",
            Failure::Throttled => "throttled",
        }
    }
}

/// Refusals counted per interval by reason and client address, summarised in one log
/// line per interval: the 401s here (no line of their own), and the compliance webhook's
/// refusals (a line each within a budget per interval, then the summary only).
pub struct RefusalLog {
    reasons: &'static [&'static str],
    budget: u64,
    window: Mutex<Window>,
}

#[derive(Default)]
struct Window {
    by_reason: Vec<u64>,
    by_addr: HashMap<IpAddr, u64>,
    other_addrs: u64,
    total: u64,
}

/// One interval's refusals ([`RefusalLog::take`]).
#[derive(Debug, Clone, PartialEq)]
pub struct RefusalSummary {
    pub total: u64,
    /// Refusals past the budget: not logged one by one.
    pub unlogged: u64,
    by_reason: Vec<(&'static str, u64)>,
    /// Distinct addresses (those past the tracking limit count as one).
    pub addresses: u64,
    /// The busiest addresses, `ip=count` comma-separated.
    pub top_addresses: String,
}

impl RefusalSummary {
    /// The count of reason `name` (0 for a name not counted).
    pub fn count(&self, name: &str) -> u64 {
        self.by_reason
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(0, |(_, c)| *c)
    }
}

impl RefusalLog {
    /// `reasons`: the names counted; `budget`: refusals per interval that may be logged
    /// one by one ([`RefusalLog::count`] says which).
    pub fn new(reasons: &'static [&'static str], budget: u64) -> RefusalLog {
        RefusalLog {
            reasons,
            budget,
            window: Mutex::new(Window::default()),
        }
    }

    /// Count a refusal of reason `reason` (one of the names given to [`RefusalLog::new`])
    /// from `ip`. True while it is within the interval's budget: the caller may log it.
    pub fn count(&self, ip: IpAddr, reason: &str) -> bool {
        let i = self
            .reasons
            .iter()
            .position(|r| *r == reason)
            .unwrap_or(self.reasons.len().saturating_sub(1));
        let mut w = self.window.lock().unwrap_or_else(|e| e.into_inner());
        if w.by_reason.len() < self.reasons.len() {
            w.by_reason.resize(self.reasons.len(), 0);
        }
        if let Some(n) = w.by_reason.get_mut(i) {
            *n += 1;
        }
        w.total += 1;
        if let Some(n) = w.by_addr.get_mut(&ip) {
            *n += 1;
        } else if w.by_addr.len() < TRACKED_ADDRESSES {
            w.by_addr.insert(ip, 1);
        } else {
            w.other_addrs += 1;
        }
        w.total <= self.budget
    }

    /// The interval that just ended (`None` if it was quiet), and a fresh one begins.
    pub fn take(&self) -> Option<RefusalSummary> {
        let w = std::mem::take(&mut *self.window.lock().unwrap_or_else(|e| e.into_inner()));
        if w.total == 0 {
            return None;
        }
        let mut top: Vec<(IpAddr, u64)> = w.by_addr.iter().map(|(a, n)| (*a, *n)).collect();
        top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let named: Vec<String> = top
            .iter()
            .take(NAMED_ADDRESSES)
            .map(|(a, n)| format!("{a}={n}"))
            .collect();
        Some(RefusalSummary {
            total: w.total,
            unlogged: w.total.saturating_sub(self.budget),
            by_reason: self
                .reasons
                .iter()
                .enumerate()
                .map(|(i, r)| (*r, w.by_reason.get(i).copied().unwrap_or(0)))
                .collect(),
            addresses: w.by_addr.len() as u64 + u64::from(w.other_addrs > 0),
            top_addresses: named.join(","),
        })
    }
}

/// The status area's service (`State` is not needed: the middleware asks `AppState`).
pub struct AuthFailures {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    blocked: Mutex<HashMap<IpAddr, Instant>>,
    /// No refusal is logged on its own (budget 0): the summary line tells them all.
    log: RefusalLog,
    pub interval: Duration,
    pub refused: AtomicU64,
    pub throttled: AtomicU64,
}

impl AuthFailures {
    pub fn new(s: &ServerSection) -> Self {
        let per_min = NonZeroU32::new(s.auth_failures_per_minute.clamp(1, u32::MAX as u64) as u32)
            .unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(s.auth_failures_burst.clamp(1, u32::MAX as u64) as u32)
            .unwrap_or(NonZeroU32::MIN);
        AuthFailures {
            limiter: governor::RateLimiter::keyed(Quota::per_minute(per_min).allow_burst(burst)),
            blocked: Mutex::new(HashMap::new()),
            log: RefusalLog::new(FAILURES, 0),
            interval: Duration::from_secs(s.auth_failure_log_interval_secs),
            refused: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
        }
    }

    /// Requests without a peer address (in-process calls) share one bucket.
    pub fn addr_of(peer: Option<std::net::SocketAddr>) -> IpAddr {
        peer.map(|p| p.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }

    /// If the address is over its budget: how long until it may try again.
    pub fn blocked(&self, ip: IpAddr) -> Option<Duration> {
        let mut blocked = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
        let until = *blocked.get(&ip)?;
        let now = Instant::now();
        if until > now {
            drop(blocked);
            self.count(ip, Failure::Throttled);
            return Some(until - now);
        }
        blocked.remove(&ip);
        None
    }

    /// Record a refused authentication. Returns the wait when this one exhausted the
    /// budget (the request is then answered 429 instead of 401).
    pub fn failed(&self, ip: IpAddr, why: Failure) -> Option<Duration> {
        self.count(ip, why);
        let not_until = self.limiter.check_key(&ip).err()?;
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        let mut blocked = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
        if blocked.len() >= TRACKED_ADDRESSES {
            let now = Instant::now();
            blocked.retain(|_, until| *until > now);
        }
        if blocked.len() < TRACKED_ADDRESSES {
            blocked.insert(ip, Instant::now() + wait);
        }
        Some(wait)
    }

    fn count(&self, ip: IpAddr, why: Failure) {
        metrics::counter!(AUTH_FAILURES, "reason" => why.as_str()).increment(1);
        match why {
            Failure::Throttled => self.throttled.fetch_add(1, Ordering::Relaxed),
            _ => self.refused.fetch_add(1, Ordering::Relaxed),
        };
        self.log.count(ip, why.as_str());
    }

    /// Write one summary line for the interval that just ended (none if it was quiet),
    /// and forget idle buckets.
    pub fn flush(&self) {
        self.limiter.retain_recent();
        let Some(w) = self.log.take() else { return };
        tracing::warn!(
            target: "security",
            interval_secs = self.interval.as_secs(),
            missing_key = w.count("missing_key"),
            invalid_key = w.count("invalid_key"),
            revoked_key = w.count("revoked_key"),
            throttled = w.count("throttled"),
            addresses = w.addresses,
            top_addresses = %w.top_addresses,
            "unauthenticated requests refused"
        );
    }

    /// Flush once per interval until shutdown, and once more at the end.
    pub async fn run(self: std::sync::Arc<Self>, shutdown: tokio::sync::watch::Receiver<bool>) {
        let me = self.clone();
        every_interval(self.interval, shutdown, move || me.flush()).await
    }
}

/// Call `flush` once per `interval` until shutdown, and once more at the end (the
/// summary-line loops of [`AuthFailures`] and [`RefusalLog`] users).
pub async fn every_interval(
    interval: Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
    flush: impl Fn(),
) {
    let mut tick = tokio::time::interval(interval);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => flush(),
            _ = async { let _ = shutdown.wait_for(|s| *s).await; } => break,
        }
    }
    flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_over_budget_is_blocked_and_others_are_not() {
        let s = ServerSection {
            auth_failures_per_minute: 1,
            auth_failures_burst: 3,
            ..ServerSection::default()
        };
        let f = AuthFailures::new(&s);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..3 {
            assert!(f.failed(a, Failure::InvalidKey).is_none());
        }
        assert!(f.failed(a, Failure::InvalidKey).is_some());
        assert!(f.blocked(a).is_some());
        assert!(f.blocked(b).is_none());
        assert!(f.failed(b, Failure::MissingKey).is_none());
        assert_eq!(f.refused.load(Ordering::Relaxed), 5);
        assert_eq!(f.throttled.load(Ordering::Relaxed), 1);
        let w = f.log.take().unwrap();
        assert_eq!(
            (
                w.count("invalid_key"),
                w.count("missing_key"),
                w.count("throttled")
            ),
            (4, 1, 1)
        );
        assert_eq!((w.addresses, w.total, w.unlogged), (2, 6, 6));
        assert_eq!(w.top_addresses, "10.0.0.1=5,10.0.0.2=1");
        assert!(f.log.take().is_none(), "a new interval starts empty");
    }

    #[test]
    fn a_refusal_log_lets_its_budget_through_then_only_counts() {
        let log = RefusalLog::new(&["bad", "stale"], 2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        assert!(log.count(a, "bad"));
        assert!(log.count(a, "stale"));
        assert!(!log.count(a, "bad"));
        let w = log.take().unwrap();
        assert_eq!(
            (w.total, w.unlogged, w.count("bad"), w.count("stale")),
            (3, 1, 2, 1)
        );
        assert!(log.count(a, "bad"), "the budget refills with the interval");
    }
}
