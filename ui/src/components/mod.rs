//! Reusable widgets behind one small trait: a filterable table that renders only its visible
//! rows, a sparkline panel, status badges, the key bar, and panel freshness markers.

pub mod badge;
pub mod keybar;
pub mod sparkline;
pub mod table;

use chrono::{DateTime, Utc};
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders};
use ratatui::Frame;

use crate::cache::Remote;
use crate::client::ClientError;
use crate::theme::Theme;
use crate::util::fmt_age;

/// Anything that draws itself into an area with the theme.
pub trait Component {
    fn render(&self, frame: &mut Frame, area: Rect, theme: &Theme);
}

/// How current a panel's data is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Freshness {
    /// Nothing received yet, no failure yet.
    Waiting,
    Fresh,
    /// Showing the last good data; the latest attempt failed.
    Stale {
        age_s: i64,
        reason: String,
    },
    /// No data at all and the latest attempt failed.
    Failed {
        reason: String,
    },
}

/// A short reason for a failed fetch.
pub fn reason(e: &ClientError, route: &str) -> String {
    match e {
        ClientError::Unreachable(_) => "backend unreachable".into(),
        ClientError::Problem(p) if p.status == 401 => "the backend rejects this key (401)".into(),
        ClientError::Problem(p) => format!("GET {route} answered {} {}", p.status, p.title),
        ClientError::Decode(d) => format!("GET {route}: invalid JSON ({d})"),
    }
}

pub fn freshness<T>(r: &Remote<T>, route: &str, now: DateTime<Utc>) -> Freshness {
    match (&r.data, &r.error) {
        (None, None) => Freshness::Waiting,
        (Some(_), None) => Freshness::Fresh,
        (Some(_), Some(e)) => Freshness::Stale {
            age_s: r.updated_at.map(|t| (now - t).num_seconds()).unwrap_or(0),
            reason: reason(e, route),
        },
        (None, Some(e)) => Freshness::Failed {
            reason: reason(e, route),
        },
    }
}

/// A bordered panel whose title carries the freshness marker (text, never colour alone).
pub fn panel<'a>(title: &str, f: &Freshness, focused: bool, theme: &Theme) -> Block<'a> {
    let mut spans = vec![Span::styled(
        format!(" {title} "),
        if focused { theme.accent } else { theme.base },
    )];
    match f {
        Freshness::Stale { age_s, reason } => spans.push(Span::styled(
            format!("[STALE {}] {reason} ", fmt_age(*age_s)),
            theme.warn,
        )),
        Freshness::Failed { reason } => {
            spans.push(Span::styled(format!("[NO DATA] {reason} "), theme.fail))
        }
        Freshness::Waiting => spans.push(Span::styled("loading… ", theme.muted)),
        Freshness::Fresh => {}
    }
    Block::default()
        .borders(Borders::ALL)
        .border_style(if focused { theme.accent } else { theme.border })
        .title(Line::from(spans))
}

/// The body text for a panel with no data.
pub fn empty_message(f: &Freshness, route: &str) -> String {
    match f {
        Freshness::Waiting => format!("Waiting for the first answer from GET {route}…"),
        Freshness::Failed { reason } => format!("No data yet: {reason}. Retrying with backoff."),
        _ => String::new(),
    }
}
