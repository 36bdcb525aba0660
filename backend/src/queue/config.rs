//! Queue settings and the retry backoff.

use super::kinds::Kind;

/// Queue settings (`[queue]` section; env `ECHOPILOT_QUEUE__<KEY>`).
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// Handlers running at once in this process.
    pub concurrency: usize,
    /// Most jobs claimed (and acknowledged) per query.
    pub batch_size: usize,
    pub lease_ms: i64,
    /// Fallback polling when no wake-up arrives (NOTIFY on PostgreSQL, in-process otherwise).
    pub poll_interval_ms: u64,
    /// How often expired leases are swept back to `queued`.
    pub reclaim_interval_ms: u64,
    pub backoff_base_ms: i64,
    pub backoff_cap_ms: i64,
    pub default_max_attempts: i64,
    /// A handler running longer than this is cancelled and its attempt fails (`timed_out`),
    /// unless its kind registered a timeout of its own.
    pub job_timeout_ms: u64,
    /// Percentage of this process's worker slots one tenant's jobs may hold at once (at
    /// least one slot). The rest is headroom: another tenant's job (or the platform's,
    /// tenant `_system`) starts at once even while one tenant's long jobs fill its share.
    pub tenant_max_share_pct: u64,
    /// Longest diagnostic `sleep` job accepted.
    pub max_sleep_ms: u64,
}

impl QueueConfig {
    /// The `[queue]` section (see [`super::area::QueueSection`]).
    pub fn from_config(cfg: &crate::Config) -> anyhow::Result<QueueConfig> {
        Ok(super::area::QueueSection::load(&cfg.raw)?)
    }
}

impl QueueConfig {
    /// Most jobs of one tenant this process runs at once: `tenant_max_share_pct` of its
    /// slots, rounded down, never below one.
    pub fn tenant_cap(&self) -> usize {
        (self.concurrency * self.tenant_max_share_pct as usize / 100).max(1)
    }
}

/// Exponential backoff with ±20 % jitter: base·2^(attempt−1), capped.
pub fn backoff_ms(cfg: &QueueConfig, attempt: i64) -> i64 {
    use rand::Rng;
    let exp = (attempt - 1).clamp(0, 30) as u32;
    let raw = cfg
        .backoff_base_ms
        .saturating_mul(1i64 << exp)
        .min(cfg.backoff_cap_ms);
    let jitter = rand::thread_rng().gen_range(0.8..1.2);
    ((raw as f64) * jitter) as i64
}
impl QueueConfig {
    /// How long one attempt of `kind` may run: its registered timeout, else
    /// `queue.job_timeout_s`.
    pub fn timeout_ms(&self, kind: &Kind) -> u64 {
        kind.timeout
            .map(|t| t.as_millis() as u64)
            .unwrap_or(self.job_timeout_ms)
            .max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_cap() {
        let dir = std::env::temp_dir();
        let cfg = QueueConfig::from_config(&crate::Config::for_data_dir(&dir)).unwrap();
        for _ in 0..100 {
            let first = backoff_ms(&cfg, 1);
            assert!((1600..=2400).contains(&first), "{first}");
            let third = backoff_ms(&cfg, 3);
            assert!((6400..=9600).contains(&third), "{third}");
            assert!(backoff_ms(&cfg, 40) <= 360_000);
        }
    }

    #[test]
    fn a_tenant_may_hold_its_share_of_the_slots_and_never_less_than_one() {
        let dir = std::env::temp_dir();
        let mut cfg = QueueConfig::from_config(&crate::Config::for_data_dir(&dir)).unwrap();
        for (slots, pct, cap) in [
            (4, 75, 3),
            (256, 75, 192),
            (1, 75, 1),
            (3, 50, 1),
            (8, 100, 8),
        ] {
            cfg.concurrency = slots;
            cfg.tenant_max_share_pct = pct;
            assert_eq!(cfg.tenant_cap(), cap, "{slots} slots at {pct} %");
        }
    }
}
