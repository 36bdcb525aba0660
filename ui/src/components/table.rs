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
    /// Where the last draw put the first data row (screen y) and which visible row that
    /// was: a click at y selects row `offset + (y - first_y)`.
    pub drawn: Cell<Option<(u16, usize)>>,
    /// Sort column and direction (`>`/`<`); `None` keeps the backend's order.
    pub sort: Option<Sort>,
    /// How many columns the rows offer sort keys for (set by [`TableView::refilter_sorted`]).
    pub sort_columns: usize,
}

/// A table's sort: column index and direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    pub column: usize,
    pub descending: bool,
}

/// Compares text with runs of digits compared as numbers (`9 ms` before `10 ms`).
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let (mut a, mut b) = (a.chars().peekable(), b.chars().peekable());
    loop {
        match (a.peek().copied(), b.peek().copied()) {
            (None, None) => return std::cmp::Ordering::Equal,
            (None, Some(_)) => return std::cmp::Ordering::Less,
            (Some(_), None) => return std::cmp::Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let mut na = String::new();
                while let Some(c) = a.peek().copied().filter(char::is_ascii_digit) {
                    na.push(c);
                    a.next();
                }
                let mut nb = String::new();
                while let Some(c) = b.peek().copied().filter(char::is_ascii_digit) {
                    nb.push(c);
                    b.next();
                }
                let (ta, tb) = (na.trim_start_matches('0'), nb.trim_start_matches('0'));
                let ord = ta.len().cmp(&tb.len()).then_with(|| ta.cmp(tb));
                if ord != std::cmp::Ordering::Equal {
                    return ord;
                }
            }
            (Some(x), Some(y)) => {
                let ord = x.to_lowercase().cmp(y.to_lowercase());
                if ord != std::cmp::Ordering::Equal {
                    return ord;
                }
                a.next();
                b.next();
            }
        }
    }
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

    /// [`refilter`](TableView::refilter) for rows that also give one sort key per column
    /// (a timestamp for a time column, so `39s ago` sorts by time): the visible rows are then
    /// ordered by [`TableView::sort`].
    pub fn refilter_sorted(&mut self, rows: impl Iterator<Item = (String, String, Vec<String>)>) {
        let mut sort_keys = Vec::new();
        self.refilter(rows.map(|(key, text, keys)| {
            sort_keys.push(keys);
            (key, text)
        }));
        self.sort_columns = sort_keys.first().map(Vec::len).unwrap_or(self.sort_columns);
        let Some(sort) = self.sort else { return };
        let mut order: Vec<(usize, String)> = self
            .visible
            .iter()
            .copied()
            .zip(self.keys.drain(..))
            .collect();
        let empty = String::new();
        order.sort_by(|(a, _), (b, _)| {
            let ka = sort_keys[*a].get(sort.column).unwrap_or(&empty);
            let kb = sort_keys[*b].get(sort.column).unwrap_or(&empty);
            let ord = natural_cmp(ka, kb);
            if sort.descending {
                ord.reverse()
            } else {
                ord
            }
        });
        (self.visible, self.keys) = order.into_iter().unzip();
        if let Some(pos) = self
            .selected_key
            .as_ref()
            .and_then(|k| self.keys.iter().position(|x| x == k))
        {
            self.selected = pos;
        }
    }

    /// Steps the sort through none, column 1 ascending, column 1 descending, column 2 … and
    /// back to none (`forward` false steps the other way).
    pub fn cycle_sort(&mut self, forward: bool) {
        let states = self.sort_columns * 2 + 1;
        if states == 1 {
            return;
        }
        let pos = match self.sort {
            None => 0,
            Some(s) => 1 + s.column * 2 + usize::from(s.descending),
        };
        let next = if forward {
            (pos + 1) % states
        } else {
            (pos + states - 1) % states
        };
        self.sort = (next > 0).then(|| Sort {
            column: (next - 1) / 2,
            descending: (next - 1) % 2 == 1,
        });
    }

    /// The visible row drawn at screen row `y`, if a data row is there.
    pub fn row_at(&self, y: u16) -> Option<usize> {
        let (first, offset) = self.drawn.get()?;
        let pos = offset + y.checked_sub(first)? as usize;
        (y - first < self.page.get() as u16 && pos < self.visible.len()).then_some(pos)
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

/// Column widths sized to their content, k9s-style: every column but the last is as wide
/// as its widest cell among `rows` (or its header, with room for the sort arrow); the last
/// takes what is left. When they do not fit in `width`, the widest columns give way first
/// (their cells are then cut with `…` by [`fit`]), down to their header's width.
pub fn fit_columns(header: &[&str], rows: &[Vec<String>], width: u16) -> Vec<u16> {
    let n = header.len();
    let mut w: Vec<u16> = header
        .iter()
        .map(|h| h.chars().count() as u16 + 2)
        .collect();
    for r in rows {
        for (i, cell) in r.iter().enumerate().take(n) {
            w[i] = w[i].max(cell.chars().count() as u16);
        }
    }
    // The highlight symbol takes 2 columns, ratatui puts 1 between columns.
    let avail = width.saturating_sub(2 + n.saturating_sub(1) as u16);
    let last_min = 12u16.min(avail / 3);
    let floor: Vec<u16> = header
        .iter()
        .map(|h| h.chars().count() as u16 + 1)
        .collect();
    loop {
        let used: u16 = w[..n.saturating_sub(1)].iter().sum();
        if used + last_min <= avail {
            break;
        }
        // Shrink the widest column that can still give way.
        match (0..n.saturating_sub(1))
            .filter(|&i| w[i] > floor[i])
            .max_by_key(|&i| w[i])
        {
            Some(i) => w[i] -= 1,
            None => break,
        }
    }
    if let Some(last) = n.checked_sub(1) {
        let used: u16 = w[..last].iter().sum();
        w[last] = avail.saturating_sub(used).max(1);
    }
    w
}

/// [`fit_columns`] over the first 500 rows `view` shows (cells from `texts`), with the
/// matching constraints: one sizing pass per draw, however long the table.
pub fn fit_view(
    header: &[&str],
    view: &TableView,
    width: u16,
    texts: impl Fn(usize) -> Vec<String>,
) -> (Vec<u16>, Vec<Constraint>) {
    let sample: Vec<Vec<String>> = view.visible.iter().take(500).map(|i| texts(*i)).collect();
    let w = fit_columns(header, &sample, width);
    let constraints = w.iter().map(|x| Constraint::Length(*x)).collect();
    (w, constraints)
}

/// `text` cut to `width` chars with `…` when longer (see [`fit_columns`]).
pub fn fit(text: &str, width: u16) -> String {
    crate::util::ellipsize(text, width as usize)
}

/// An id cut in the middle (`job_0193…a17c`): ids that share a prefix (a time) still
/// differ on screen by their tail.
pub fn fit_id(text: &str, width: u16) -> String {
    let chars: Vec<char> = text.chars().collect();
    let w = width as usize;
    if chars.len() <= w || w < 5 {
        return fit(text, width);
    }
    let tail = (w - 1) / 2;
    let head = w - 1 - tail;
    let mut out: String = chars[..head].iter().collect();
    out.push('…');
    out.extend(&chars[chars.len() - tail..]);
    out
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
        // The sort is shown in the header: `State ▲` (ascending) or `State ▼`.
        let header = Row::new(self.header.iter().enumerate().map(|(i, h)| {
            match self.view.sort.filter(|s| s.column == i) {
                Some(s) => format!("{h} {}", if s.descending { "▼" } else { "▲" }),
                None => h.to_string(),
            }
        }))
        .style(
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
        // Data rows start under the header row.
        self.view.drawn.set(Some((body.y + 1, offset)));
        let mut state = TableState::default().with_selected(Some(sel - offset));
        frame.render_stateful_widget(table, body, &mut state);
    }
}

#[cfg(test)]
mod fit_tests {
    use super::{fit, fit_columns};

    #[test]
    fn columns_fit_their_content_and_the_last_takes_the_rest() {
        let rows = vec![
            vec!["job_0001".to_string(), "echo".into(), "a long error".into()],
            vec!["job_0002".to_string(), "reconcile".into(), "x".into()],
        ];
        let w = fit_columns(&["Id", "Kind", "Error"], &rows, 60);
        assert_eq!(w[..2], [8, 9]);
        assert_eq!(w.iter().sum::<u16>(), 60 - 2 - 2);
        // Too narrow: the widest gives way first, never below its header.
        let wide = vec![vec!["x".repeat(50), "kind".into(), "err".into()]];
        let w = fit_columns(&["Id", "Kind", "Error"], &wide, 40);
        assert!(w[0] < 50 && w[0] >= 3, "{w:?}");
        assert_eq!(w[1], 6);
        assert!(w[2] >= 12, "{w:?}");
        assert_eq!(fit(&"x".repeat(50), w[0]).chars().last(), Some('…'));
        assert_eq!(
            super::fit_id("job_0193a0b1c2d3e4f5a6b7", 13),
            "job_01…f5a6b7"
        );
    }
}
