//! The bottom key bar: only the keys that apply in the current mode and tab.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::Component;
use crate::theme::Theme;

pub struct KeyBar<'a> {
    pub entries: &'a [(&'a str, &'a str)],
}

impl Component for KeyBar<'_> {
    fn render(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let mut spans = Vec::new();
        let mut used = 0usize;
        let max = area.width as usize;
        for (key, label) in self.entries {
            let need = key.chars().count() + label.chars().count() + 4;
            if used + need > max {
                break;
            }
            used += need;
            spans.push(Span::styled(format!(" {key} "), theme.key));
            spans.push(Span::styled(format!(" {label} "), theme.base));
        }
        frame.render_widget(Paragraph::new(Line::from(spans)), area);
    }
}
