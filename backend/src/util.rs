//! Small shared helpers: time and ids.

use rand::RngCore;

/// Milliseconds since the Unix epoch (UTC).
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// RFC 3339 UTC timestamp with millisecond precision, e.g. `2026-11-22T03:44:42.123Z`.
pub fn rfc3339_ms(ms: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A random lowercase-hex id with a readable prefix, e.g. `key_3f9a…`.
/// `s` cut to at most `max` characters, with `…` when it was cut.
pub fn truncate_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// `prefix` + 12 hex digits of the Unix time in ms + 16 random hex digits: unique like a
/// random id (64 random bits per millisecond), but ids made close in time sort close
/// together, so B-tree inserts land at the right edge of the index and a batch of jobs
/// claimed in enqueue order is found in a few index pages instead of one page per job.
pub fn time_ordered_id(prefix: &str) -> String {
    let mut buf = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    let ms = (now_ms().max(0) as u64) & 0xffff_ffff_ffff;
    format!("{prefix}{ms:012x}{}", hex::encode(buf))
}

pub fn random_id(prefix: &str, bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    format!("{prefix}{}", hex::encode(buf))
}
