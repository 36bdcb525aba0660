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

/// A next-run time: `in 42s`, or `overdue 2s` when it is already past (a scheduler that is
/// behind must not read as "2s ago", which looks like a run that happened).
pub fn next_time(ts: Option<&str>, now: DateTime<Utc>) -> String {
    let Some(raw) = ts.filter(|s| !s.is_empty()) else {
        return "-".into();
    };
    match parse_ts(raw) {
        Some(t) if t < now => format!("overdue {}", fmt_age((now - t).num_seconds())),
        Some(t) => format!("in {}", fmt_age((t - now).num_seconds())),
        None => raw.to_string(),
    }
}

/// A six-field UTC cron expression (`sec min hour dom mon dow`) in words, for the common
/// shapes: `every minute at :30`, `every 5 min`, `hourly at :15`, `daily 07:55 UTC`,
/// `Mondays 01:20 UTC`, `monthly on day 1 at 02:30 UTC`, `yearly on Jan 1 at 00:00 UTC`.
/// Anything else is returned as written.
pub fn cron_words(expr: &str) -> String {
    let f: Vec<&str> = expr.split_whitespace().collect();
    let [sec, min, hour, dom, mon, dow] = f[..] else {
        return expr.to_string();
    };
    let num = |s: &str, hi: u32| s.parse::<u32>().ok().filter(|n| *n <= hi);
    let step = |s: &str| s.strip_prefix("*/").and_then(|n| n.parse::<u32>().ok());
    let every_day = dom == "*" && mon == "*" && dow == "*";
    let at = |h: u32, m: u32| format!("{h:02}:{m:02} UTC");
    const DAYS: [&str; 7] = [
        "Sundays",
        "Mondays",
        "Tuesdays",
        "Wednesdays",
        "Thursdays",
        "Fridays",
        "Saturdays",
    ];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let day_name = |d: &str| -> Option<&'static str> {
        let i = match d.to_ascii_uppercase().as_str() {
            "SUN" | "0" | "7" => 0,
            "MON" | "1" => 1,
            "TUE" | "2" => 2,
            "WED" | "3" => 3,
            "THU" | "4" => 4,
            "FRI" | "5" => 5,
            "SAT" | "6" => 6,
            _ => return None,
        };
        Some(DAYS[i])
    };
    match (num(sec, 59), every_day, min, hour) {
        _ if sec == "*" && min == "*" && hour == "*" && every_day => "every second".into(),
        (None, true, "*", "*") if step(sec).is_some() => {
            format!("every {} s", step(sec).unwrap_or(1))
        }
        (Some(s), true, "*", "*") => format!("every minute at :{s:02}"),
        (Some(0), true, m, "*") if step(m).is_some() => {
            format!("every {} min", step(m).unwrap_or(1))
        }
        (Some(0), true, m, "*") if num(m, 59).is_some() => {
            format!("hourly at :{:02}", num(m, 59).unwrap_or(0))
        }
        (Some(0), true, m, h) if num(m, 59).is_some() && step(h).is_some() => format!(
            "every {} h at :{:02}",
            step(h).unwrap_or(1),
            num(m, 59).unwrap_or(0)
        ),
        (Some(0), _, m, h) => {
            let (Some(m), Some(h)) = (num(m, 59), num(h, 23)) else {
                return expr.to_string();
            };
            match (dom, mon, dow) {
                ("*", "*", "*") => format!("daily {}", at(h, m)),
                ("*", "*", d) => match day_name(d) {
                    Some(name) => format!("{name} {}", at(h, m)),
                    None => expr.to_string(),
                },
                (d, "*", "*") if num(d, 31).is_some_and(|d| d >= 1) => {
                    format!("monthly on day {d} at {}", at(h, m))
                }
                (d, mo, "*") if num(d, 31).is_some_and(|d| d >= 1) => {
                    match num(mo, 12).filter(|m| *m >= 1) {
                        Some(mo) => {
                            format!("yearly on {} {d} at {}", MONTHS[mo as usize - 1], at(h, m))
                        }
                        None => expr.to_string(),
                    }
                }
                _ => expr.to_string(),
            }
        }
        _ => expr.to_string(),
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

/// `s` as a query-string value (everything but letters and digits percent-encoded).
pub fn percent_encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Bytes as `812 B`, `4.2 KB`, `23.5 GB` (powers of 1024, as `df -h` and `free -h`).
pub fn fmt_bytes(n: f64) -> String {
    const UNITS: [&str; 6] = ["B", "KB", "MB", "GB", "TB", "PB"];
    let mut v = n.max(0.0);
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{v:.0} B")
    } else if v < 10.0 {
        format!("{v:.1} {}", UNITS[u])
    } else {
        format!("{v:.0} {}", UNITS[u])
    }
}

/// A per-second rate as `/s`, `/min` or `/h`, whichever reads as a number ≥ 1.
pub fn fmt_rate(per_sec: f64) -> String {
    if per_sec >= 1.0 {
        format!("{}/s", fmt_num(per_sec))
    } else if per_sec * 60.0 >= 1.0 {
        format!("{}/min", fmt_num(per_sec * 60.0))
    } else {
        format!("{}/h", fmt_num(per_sec * 3600.0))
    }
}

/// Words of `s` in lines of at most `width` chars (a word longer than that is cut).
pub fn wrap_words(s: &str, width: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for w in s.split(' ') {
        let need = cur.chars().count() + usize::from(!cur.is_empty()) + w.chars().count();
        if !cur.is_empty() && need > width {
            out.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(&ellipsize(w, width));
    }
    if !cur.is_empty() || out.is_empty() {
        out.push(cur);
    }
    out
}

/// `lead` spans, then `text` wrapped by words to `width` (at least `min_avail` chars of
/// text a line), its continuation lines indented under the text's first column: a list
/// item's or a key's description never runs under its number or key.
pub fn hanging_lines(
    mut lead: Vec<ratatui::text::Span<'static>>,
    text: &str,
    width: usize,
    min_avail: usize,
) -> Vec<ratatui::text::Line<'static>> {
    use ratatui::text::{Line, Span};
    let indent: usize = lead.iter().map(|s| s.content.chars().count()).sum();
    let avail = width.saturating_sub(indent).max(min_avail);
    let mut out = Vec::new();
    for (i, piece) in wrap_words(text, avail).into_iter().enumerate() {
        if i == 0 {
            lead.push(Span::raw(piece));
            out.push(Line::from(std::mem::take(&mut lead)));
        } else {
            out.push(Line::from(format!("{}{piece}", " ".repeat(indent))));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cron_in_words() {
        for (expr, words) in [
            ("0 * * * * *", "every minute at :00"),
            ("30 * * * * *", "every minute at :30"),
            ("* * * * * *", "every second"),
            ("*/5 * * * * *", "every 5 s"),
            ("0 */5 * * * *", "every 5 min"),
            ("0 15 * * * *", "hourly at :15"),
            ("0 0 */6 * * *", "every 6 h at :00"),
            ("0 55 7 * * *", "daily 07:55 UTC"),
            ("0 20 1 * * MON", "Mondays 01:20 UTC"),
            ("0 20 1 * * 1", "Mondays 01:20 UTC"),
            ("0 30 2 1 * *", "monthly on day 1 at 02:30 UTC"),
            ("0 0 0 1 1 *", "yearly on Jan 1 at 00:00 UTC"),
            ("0 0 9-17 * * *", "0 0 9-17 * * *"),
            ("not cron", "not cron"),
        ] {
            assert_eq!(cron_words(expr), words, "{expr}");
        }
    }

    #[test]
    fn next_time_in_the_past_is_overdue() {
        let now = parse_ts("2026-12-01T10:00:10Z").unwrap();
        assert_eq!(next_time(Some("2026-12-01T10:00:08Z"), now), "overdue 2s");
        assert_eq!(next_time(Some("2026-12-01T10:00:52Z"), now), "in 42s");
        assert_eq!(next_time(None, now), "-");
    }

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
