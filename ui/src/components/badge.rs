//! Status badges: the status is always spelled out (`[OK]`, `[WARN]`, `[FAIL]`), colour only
//! reinforces it.

use ratatui::layout::Rect;
use ratatui::text::Span;
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::Component;
use crate::theme::Theme;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Ok,
    Warn,
    Fail,
    Info,
}

/// Classifies a status/outcome word from any of the APIs.
pub fn classify(s: &str) -> Class {
    match s.to_ascii_lowercase().as_str() {
        "green" | "ok" | "healthy" | "up" | "success" | "succeeded" | "completed" | "pass"
        | "passed" | "true" | "done" => Class::Ok,
        "yellow" | "warn" | "warning" | "degraded" | "skipped" | "stale" | "retrying" => {
            Class::Warn
        }
        "red" | "fail" | "failed" | "failure" | "error" | "down" | "dead" | "critical"
        | "false" | "timeout" | "unhealthy" => Class::Fail,
        _ => Class::Info,
    }
}

/// The label shown for a status word.
pub fn label(s: &str) -> String {
    match classify(s) {
        Class::Ok => "[OK]".into(),
        Class::Warn => "[WARN]".into(),
        Class::Fail => "[FAIL]".into(),
        Class::Info if s.is_empty() => "[?]".into(),
        Class::Info => format!("[{}]", s.to_ascii_uppercase()),
    }
}

pub fn badge(s: &str, theme: &Theme) -> Span<'static> {
    let style = match classify(s) {
        Class::Ok => theme.ok,
        Class::Warn => theme.warn,
        Class::Fail => theme.fail,
        Class::Info => theme.muted,
    };
    Span::styled(label(s), style)
}

/// A badge as a standalone component.
pub struct StatusBadge<'a>(pub &'a str);

impl Component for StatusBadge<'_> {
    fn render(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        frame.render_widget(Paragraph::new(badge(self.0, theme)), area);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert_eq!(label("green"), "[OK]");
        assert_eq!(label("yellow"), "[WARN]");
        assert_eq!(label("red"), "[FAIL]");
        assert_eq!(label("running"), "[RUNNING]");
    }
}
