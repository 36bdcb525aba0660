//! Small formatting helpers shared by tabs and dialogs.

use chrono::{DateTime, Utc};

use crate::model::parse_ts;

/// `42s`, `4m 12s`, `3h 05m`, `2d 04h`.
pub fn fmt_duration(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {:02}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d {:02}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// A run's duration: `840 ms`, `1.2 s`, else as [`fmt_duration`].
pub fn fmt_duration_ms(ms: i64) -> String {
    match ms.max(0) {
        ms @ 0..=999 => format!("{ms} ms"),
        ms @ 1000..=59_999 => format!("{:.1} s", ms as f64 / 1000.0),
        ms => fmt_duration(ms / 1000),
    }
}

/// Compact age: `42s`, `5m`, `3h`, `2d`.
pub fn fmt_age(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86_399 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// `3m ago` / `in 42s` / the raw text if it is not a timestamp / `-` if absent.
pub fn rel_time(ts: Option<&str>, now: DateTime<Utc>) -> String {
    let Some(raw) = ts.filter(|s| !s.is_empty()) else {
        return "-".into();
    };
    match parse_ts(raw) {
        Some(t) => rel(t, now),
        None => raw.to_string(),
    }
}

pub fn rel(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let d = (now - t).num_seconds();
    if d >= 0 {
        format!("{} ago", fmt_age(d))
    } else {
        format!("in {}", fmt_age(-d))
    }
}

/// `1,234,567`.
pub fn fmt_count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A float with at most one decimal, without a trailing `.0`.
pub fn fmt_num(v: f64) -> String {
    if (v - v.round()).abs() < 0.05 {
        format!("{}", v.round() as i64)
    } else {
        format!("{v:.1}")
    }
}

/// Truncates to `max` chars with an ellipsis.
pub fn ellipsize(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(fmt_duration(252), "4m 12s");
        assert_eq!(fmt_age(7200), "2h");
        assert_eq!(fmt_count(1_234_567), "1,234,567");
        assert_eq!(fmt_num(3.0), "3");
        assert_eq!(fmt_num(3.25), "3.2");
        assert_eq!(ellipsize("abcdef", 4), "abc…");
    }
}
