//! Rolling window of finished HTTP requests (latency, status), fed by
//! `api::middleware::observe`, for p95 latency and error rate over recent minutes.
//!
//! Process-wide like the Prometheus recorder it mirrors: the middleware has no state
//! handle, and one process serves one API.

use std::collections::VecDeque;
use std::sync::Mutex;

/// Longest window anyone asks for.
const KEEP_MS: i64 = 5 * 60 * 1000;
/// Memory bound under extreme load: beyond this the oldest entries go first, so stats
/// then cover a shorter (still most recent) span.
const MAX_ENTRIES: usize = 200_000;

#[derive(Clone, Copy)]
struct Entry {
    at_ms: i64,
    latency_ms: f32,
    status: u16,
}

static WINDOW: Mutex<VecDeque<Entry>> = Mutex::new(VecDeque::new());

/// Record one finished request.
pub fn record(status: u16, seconds: f64) {
    let now = crate::util::now_ms();
    let mut w = WINDOW.lock().unwrap_or_else(|e| e.into_inner());
    while w
        .front()
        .is_some_and(|e| e.at_ms < now - KEEP_MS || w.len() >= MAX_ENTRIES)
    {
        w.pop_front();
    }
    w.push_back(Entry {
        at_ms: now,
        latency_ms: (seconds * 1000.0) as f32,
        status,
    });
}

/// Request statistics over a recent window. Percentiles and rates are `None` when the
/// window holds no request (no data is not "0 ms").
#[derive(Debug, Clone, serde::Serialize)]
pub struct ApiStats {
    pub window_s: i64,
    pub requests: u64,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub max_ms: Option<f64>,
    /// Fraction of responses with a 5xx status.
    pub error_rate: Option<f64>,
    /// Fraction of responses with a 4xx status (bad input, auth; not server faults).
    pub client_error_rate: Option<f64>,
}

/// Stats over the last `window_ms`.
pub fn stats(window_ms: i64) -> ApiStats {
    let since = crate::util::now_ms() - window_ms;
    let (mut lat, mut errors, mut client) = (Vec::new(), 0u64, 0u64);
    {
        let w = WINDOW.lock().unwrap_or_else(|e| e.into_inner());
        for e in w.iter().rev().take_while(|e| e.at_ms >= since) {
            lat.push(e.latency_ms);
            if e.status >= 500 {
                errors += 1;
            } else if e.status >= 400 {
                client += 1;
            }
        }
    }
    let n = lat.len() as u64;
    lat.sort_by(f32::total_cmp);
    let pct = |p: f64| -> Option<f64> {
        if lat.is_empty() {
            return None;
        }
        // Nearest-rank percentile.
        let rank = ((p * lat.len() as f64).ceil() as usize).clamp(1, lat.len());
        Some(round2(f64::from(lat[rank - 1])))
    };
    let rate = |k: u64| (n > 0).then(|| round4(k as f64 / n as f64));
    ApiStats {
        window_s: window_ms / 1000,
        requests: n,
        p50_ms: pct(0.50),
        p95_ms: pct(0.95),
        max_ms: lat.last().map(|m| round2(f64::from(*m))),
        error_rate: rate(errors),
        client_error_rate: rate(client),
    }
}

pub(crate) fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_rates() {
        for i in 1..=100 {
            let status = if i <= 3 {
                503
            } else if i <= 10 {
                404
            } else {
                200
            };
            record(status, f64::from(i) / 1000.0);
        }
        let s = stats(60_000);
        // Other tests in this process may record too; ours dominate the tail check.
        assert!(s.requests >= 100);
        assert!(s.p95_ms.unwrap() >= 90.0);
        assert!(s.error_rate.unwrap() > 0.0);
        assert!(s.client_error_rate.unwrap() > 0.0);
    }
}
