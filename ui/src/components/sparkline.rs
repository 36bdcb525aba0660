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
    /// Extra title text (e.g. a stale marker).
    pub note: Option<Span<'a>>,
    /// Message when there are no samples.
    pub empty: &'a str,
}

impl Component for Spark<'_> {
    fn render(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let unit = self.metric.unit();
        let mut title = vec![Span::styled(
            format!(" {} ", self.metric.label()),
            theme.base,
        )];
        if let Some(last) = self.values.last() {
            let max = self.values.iter().copied().fold(f64::MIN, f64::max);
            title.push(Span::styled(
                format!("now {}{unit} · max {}{unit} ", fmt_num(*last), fmt_num(max)),
                theme.accent,
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
        let w = inner.width as usize;
        let start = self.values.len().saturating_sub(w);
        // Sparkline takes integers: keep one decimal of resolution.
        let data: Vec<u64> = self.values[start..]
            .iter()
            .map(|v| (v.max(0.0) * 10.0).round() as u64)
            .collect();
        let mut spark = Sparkline::default().data(&data).style(theme.sparkline);
        if unit == "%" {
            // Percentages on an absolute 0–100 scale so a flat 5% does not look like 100%.
            spark = spark.max(1000);
        }
        frame.render_widget(spark, inner);
    }
}
