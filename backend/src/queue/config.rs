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
}

impl QueueConfig {
    /// The `[queue]` section (see [`super::area::QueueSection`]).
    pub fn from_config(cfg: &crate::Config) -> anyhow::Result<QueueConfig> {
        Ok(super::area::QueueSection::load(&cfg.raw)?)
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
}
