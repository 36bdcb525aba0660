//! A titled sparkline over the most recent samples that fit the width.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Sparkline, Wrap};
use ratatui::Frame;

use super::Component;
use crate::model::Metric;
use crate::theme::Theme;
use crate::util::fmt_num;

pub struct Spark<'a> {
    pub metric: Metric,
    pub values: &'a [f64],
    /// When each value was sampled (ms), for the time span in the title.
    pub stamps: &'a [i64],
    /// Extra title text (e.g. a stale marker).
    pub note: Option<Span<'a>>,
    /// Message when there are no samples.
    pub empty: &'a str,
}

/// The smallest of 1, 2, 2.5, 5 × 10^k at or above `v` (a scale top that reads well).
pub fn nice_ceiling(v: f64) -> f64 {
    if !(v.is_finite() && v > 0.0) {
        return 1.0;
    }
    let mag = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|top| *top >= v * 0.999_999)
        .unwrap_or(10.0 * mag)
}

impl Component for Spark<'_> {
    fn render(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let unit = self.metric.unit();
        let inner_w = area.width.saturating_sub(2) as usize;
        let start = self.values.len().saturating_sub(inner_w);
        let shown = &self.values[start..];
        // Scaled to what is shown (a flat 5 % memory on a 0–100 scale looks like no data):
        // the top is a round number above the maximum, said in the title.
        let max = shown.iter().copied().fold(0.0f64, f64::max);
        let mut top = nice_ceiling(max * 1.1);
        if unit == "%" {
            top = top.min(100.0);
        }
        let mut title = vec![Span::styled(
            format!(" {} ", self.metric.label()),
            theme.base,
        )];
        if let Some(last) = shown.last() {
            title.push(Span::styled(
                format!("now {}{unit} · max {}{unit} ", fmt_num(*last), fmt_num(max)),
                theme.accent,
            ));
            let span_ms = match (self.stamps.get(start), self.stamps.last()) {
                (Some(a), Some(b)) => (b - a).max(0),
                _ => 0,
            };
            // The time span before the scale: at 80 columns the scale is what is cut.
            title.push(Span::styled(
                format!(
                    "· {} · 0–{}{unit} ",
                    crate::util::fmt_duration(span_ms / 1000),
                    fmt_num(top)
                ),
                theme.muted,
            ));
        }
        if let Some(n) = &self.note {
            title.push(n.clone());
        }
        let block = Block::default()
            .borders(Borders::ALL)
            .border_style(theme.border)
            .title(Line::from(title));
        let inner = block.inner(area);
        frame.render_widget(block, area);
        if self.values.is_empty() {
            frame.render_widget(
                Paragraph::new(Span::styled(self.empty, theme.muted)).wrap(Wrap { trim: true }),
                inner,
            );
            return;
        }
        // Sparkline takes integers: keep one decimal of resolution.
        let data: Vec<u64> = shown
            .iter()
            .map(|v| (v.max(0.0) * 10.0).round() as u64)
            .collect();
        let spark = Sparkline::default()
            .data(&data)
            .style(theme.sparkline)
            .max((top * 10.0).round().max(1.0) as u64);
        frame.render_widget(spark, inner);
    }
}

#[cfg(test)]
mod tests {
    use super::nice_ceiling;

    #[test]
    fn scale_tops_are_round() {
        assert_eq!(nice_ceiling(6.2), 10.0);
        assert_eq!(nice_ceiling(4.9), 5.0);
        assert_eq!(nice_ceiling(2.2), 2.5);
        assert_eq!(nice_ceiling(71.0), 100.0);
        assert_eq!(nice_ceiling(0.3), 0.5);
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(2.0), 2.0);
    }
}
