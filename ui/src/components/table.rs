//! A filterable table that builds rows only for the visible window.

use std::cell::Cell;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, HighlightSpacing, Paragraph, Row, Table, TableState};
use ratatui::Frame;

use super::Component;
use crate::theme::Theme;

/// A table's selection and `/` filter. `visible` holds indices into the data, filtered.
#[derive(Debug, Clone, Default)]
pub struct TableView {
    pub selected: usize,
    pub filter: String,
    pub visible: Vec<usize>,
    /// Row keys of `visible`, same order.
    pub keys: Vec<String>,
    /// Key of the selected row, so a refresh that reorders rows keeps the selection.
    pub selected_key: Option<String>,
    /// Data rows the last draw had room for: how far PgDn/PgUp move.
    pub page: Cell<usize>,
}

impl TableView {
    /// Recomputes `visible` from `(key, searchable text)` rows.
    pub fn refilter(&mut self, rows: impl Iterator<Item = (String, String)>) {
        let terms: Vec<String> = self
            .filter
            .split_whitespace()
            .map(str::to_lowercase)
            .collect();
        self.visible.clear();
        self.keys.clear();
        for (i, (key, text)) in rows.enumerate() {
            let text = text.to_lowercase();
            if terms.iter().all(|t| text.contains(t.as_str())) {
                self.visible.push(i);
                self.keys.push(key);
            }
        }
        if let Some(k) = &self.selected_key {
            if let Some(pos) = self.keys.iter().position(|x| x == k) {
                self.selected = pos;
            }
        }
        self.selected = self.selected.min(self.visible.len().saturating_sub(1));
        self.selected_key = self.keys.get(self.selected).cloned();
    }

    /// Index into the data of the selected row.
    pub fn selected_index(&self) -> Option<usize> {
        self.visible.get(self.selected).copied()
    }

    /// Moves the selection to visible row `pos` (clamped).
    pub fn move_to(&mut self, pos: isize) {
        if self.visible.is_empty() {
            return;
        }
        let max = self.visible.len() as isize - 1;
        self.selected = pos.clamp(0, max) as usize;
        self.selected_key = self.keys.get(self.selected).cloned();
    }

    /// Rows one PgDn/PgUp moves: the visible height of the last draw (10 before any draw).
    pub fn page_rows(&self) -> usize {
        match self.page.get() {
            0 => 10,
            n => n,
        }
    }

    /// Selects the row with `key` on the next refilter (palette jump), with no filter.
    pub fn select_key(&mut self, key: &str) {
        self.filter.clear();
        self.selected_key = Some(key.to_string());
    }
}

pub struct DataTable<'a> {
    pub block: Block<'a>,
    pub header: &'a [&'a str],
    pub widths: &'a [Constraint],
    pub view: &'a TableView,
    /// Builds the row for a data index (called only for rows on screen).
    pub row: &'a dyn Fn(usize) -> Row<'a>,
    pub focused: bool,
    /// The `/` editor is open on this table.
    pub editing: bool,
    /// Shown when there are no rows at all (before filtering).
    pub empty: String,
    pub total: usize,
}

impl Component for DataTable<'_> {
    fn render(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let inner = self.block.inner(area);
        // Header takes one row; only rows that fit are ever built.
        let show_filter = self.editing || !self.view.filter.is_empty();
        let cap = (inner.height as usize)
            .saturating_sub(1 + usize::from(show_filter))
            .max(1);
        self.view.page.set(cap);
        let shown = self.view.visible.len();
        let sel = self.view.selected.min(shown.saturating_sub(1));
        let offset = sel.saturating_sub(cap - 1);
        // Where the selection is and how many rows there are, k9s-style, in the title.
        let mut position = if shown == 0 {
            format!(" 0 of {} rows match ", self.total)
        } else if shown == self.total {
            format!(" {} of {} ", sel + 1, shown)
        } else {
            format!(" {} of {} (filtered from {}) ", sel + 1, shown, self.total)
        };
        if shown > cap {
            position.push_str(&format!(
                "· rows {}-{} ",
                offset + 1,
                (offset + cap).min(shown)
            ));
        }
        let mut block = self.block.clone();
        // Nothing to count before the first rows arrive (the title says loading / no data).
        if self.total > 0 {
            block = block.title(Line::from(Span::styled(position, theme.muted)).right_aligned());
        }
        frame.render_widget(block, area);
        let [body, filter] = Layout::vertical([
            Constraint::Min(1),
            Constraint::Length(u16::from(show_filter)),
        ])
        .areas(inner);
        if show_filter {
            let line = Line::from(vec![
                Span::styled("/ ", theme.accent),
                Span::raw(self.view.filter.clone()),
                Span::styled(if self.editing { "█" } else { "" }, theme.muted),
                Span::styled(
                    format!("  {} of {} rows", self.view.visible.len(), self.total),
                    theme.muted,
                ),
            ]);
            frame.render_widget(Paragraph::new(line), filter);
        }
        if self.total == 0 || self.view.visible.is_empty() {
            let msg = if self.total == 0 {
                self.empty.clone()
            } else {
                format!("No rows match the filter {:?}.", self.view.filter)
            };
            frame.render_widget(Paragraph::new(Span::styled(msg, theme.muted)), body);
            return;
        }
        let rows: Vec<Row> = self.view.visible[offset..]
            .iter()
            .take(cap)
            .map(|i| (self.row)(*i))
            .collect();
        let header = Row::new(self.header.iter().copied()).style(
            theme
                .base
                .add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
        );
        let table = Table::new(rows, self.widths)
            .header(header)
            .highlight_symbol("> ")
            .highlight_spacing(HighlightSpacing::Always)
            .row_highlight_style(if self.focused {
                theme.selected
            } else {
                theme.base.add_modifier(Modifier::BOLD)
            });
        let mut state = TableState::default().with_selected(Some(sel - offset));
        frame.render_stateful_widget(table, body, &mut state);
    }
}
