//! Key handling: the registry resolves a key to an action in the current context; global
//! actions are handled here, tab actions by the tab, dialog keys by the dialog's flow.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseEvent, MouseEventKind};

use super::App;
use crate::commands::{self, Action, Mode};
use crate::components::table::TableView;
use crate::event::Effect;
use crate::popups::describe::DescribeView;
use crate::popups::Popup;

impl App {
    pub(super) fn on_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        let ctx = self.context();
        let action = commands::resolve(&key, &ctx);
        if action == Some(Action::Quit)
            && (ctx.mode == Mode::Normal || key.modifiers.contains(KeyModifiers::CONTROL))
        {
            self.should_quit = true;
            return Vec::new();
        }
        match ctx.mode {
            Mode::Normal => match action {
                Some(a) => self.normal_action(a, &key),
                None => Vec::new(),
            },
            Mode::Filter => {
                self.filter_key(action, &key);
                Vec::new()
            }
            Mode::Describe => self.describe_key(action),
            Mode::Logs | Mode::LogsSearch => self.logs_key(ctx.mode, action, &key),
            _ => self.popup_key(ctx.mode, action, key),
        }
    }

    fn filter_key(&mut self, action: Option<Action>, key: &KeyEvent) {
        let tab = &mut self.tabs[self.current];
        match action {
            Some(Action::FilterApply) => self.filtering = false,
            Some(Action::FilterClear) => {
                self.filtering = false;
                if let Some(t) = tab.table_mut() {
                    t.filter.clear();
                }
                tab.refilter(&self.cache);
            }
            _ => {
                let changed = match tab.table_mut() {
                    Some(t) => edit_line(&mut t.filter, key),
                    None => false,
                };
                if changed {
                    tab.refilter(&self.cache);
                }
            }
        }
    }

    /// Keys of the describe view: scroll, JSON toggle, copy the id, back.
    fn describe_key(&mut self, action: Option<Action>) -> Vec<Effect> {
        let Some(Popup::Describe(v)) = self.popup.as_mut() else {
            return Vec::new();
        };
        match action {
            Some(Action::Close) => self.popup = None,
            Some(Action::Up) => v.scroll_by(-1),
            Some(Action::Down) => v.scroll_by(1),
            Some(Action::PageUp) => v.scroll_by(-v.page()),
            Some(Action::PageDown) => v.scroll_by(v.page()),
            Some(Action::ToggleJson) => v.toggle_json(),
            Some(Action::ToggleUtc) => self.toggle_utc(),
            Some(Action::CopyId) => {
                let id = v.described.id.clone();
                self.notify(format!("Copied {id} to the clipboard (OSC 52)."));
                return vec![Effect::CopyToClipboard(id)];
            }
            _ => {}
        }
        Vec::new()
    }

    /// `z`: clock times in UTC or local time, said in a flash.
    fn toggle_utc(&mut self) {
        self.utc = !self.utc;
        self.notify(if self.utc {
            "Times in UTC."
        } else {
            "Times in local time."
        });
    }

    /// The describe view of the selected row (`d`, Enter, a second click).
    fn open_describe(&mut self) {
        match self.current().describe(&self.cache) {
            Some(d) => self.popup = Some(Popup::Describe(DescribeView::new(d))),
            None => self.notify("Nothing selected to describe."),
        }
    }

    /// The mouse: the wheel scrolls what is open (table, logs, describe, help, palette); a
    /// click on the tab line opens that tab; a click on a table row selects it, a second
    /// click on the selected row describes it.
    pub(super) fn on_mouse(&mut self, m: MouseEvent) -> Vec<Effect> {
        let wheel = match m.kind {
            MouseEventKind::ScrollDown => 3,
            MouseEventKind::ScrollUp => -3,
            _ => 0,
        };
        let total = self
            .cache
            .get(crate::popups::logs::LOGS)
            .map(|v| v.lines.len())
            .unwrap_or(0);
        match self.popup.as_mut() {
            Some(Popup::Logs(v)) => {
                v.scroll_back(-wheel, total);
                return Vec::new();
            }
            Some(Popup::Describe(v)) => {
                v.scroll_by(wheel as i32);
                return Vec::new();
            }
            Some(Popup::Help { scroll }) => {
                let max = self.help_max_scroll.get() as i32;
                *scroll = (*scroll as i32 + wheel as i32).clamp(0, max.max(0)) as u16;
                return Vec::new();
            }
            Some(Popup::Palette(p)) => {
                p.move_by(wheel.signum());
                return Vec::new();
            }
            Some(_) => return Vec::new(),
            None => {}
        }
        if self.filtering {
            return Vec::new();
        }
        if wheel != 0 {
            return self.move_selection(|t| t.selected as isize + wheel);
        }
        // The tab line is the second row.
        if m.row == 1 {
            let (width, _) = self.frame_size.get();
            let (spots, _) = crate::ui::tab_positions(self, width);
            if let Some(i) = spots.iter().position(|(a, b)| (*a..*b).contains(&m.column)) {
                return self.switch_tab(i);
            }
            return Vec::new();
        }
        let Some(t) = self.tabs[self.current].table_mut() else {
            return Vec::new();
        };
        match t.row_at(m.row) {
            Some(pos) if pos == t.selected => {
                self.open_describe();
                Vec::new()
            }
            Some(pos) => {
                t.move_to(pos as isize);
                Vec::new()
            }
            None => Vec::new(),
        }
    }

    /// Keys of the logs view: scroll, follow, wrap, level, area, search; Esc back.
    fn logs_key(&mut self, mode: Mode, action: Option<Action>, key: &KeyEvent) -> Vec<Effect> {
        use crate::popups::logs::{LEVELS, LOGS};
        let total = self.cache.get(LOGS).map(|v| v.lines.len()).unwrap_or(0);
        let areas: Vec<String> = self
            .cache
            .get(LOGS)
            .map(|v| v.areas.clone())
            .unwrap_or_default();
        let Some(Popup::Logs(v)) = self.popup.as_mut() else {
            return Vec::new();
        };
        if mode == Mode::LogsSearch {
            match action {
                Some(Action::FilterApply) => v.searching = false,
                Some(Action::FilterClear) => {
                    v.searching = false;
                    v.query.clear();
                }
                _ => {
                    edit_line(&mut v.query, key);
                    return Vec::new();
                }
            }
            v.back = 0;
            return self.refetch(LOGS.res);
        }
        let page = v.page() as isize;
        match action {
            Some(Action::Close) => {
                self.popup = None;
                return Vec::new();
            }
            Some(Action::Up) => v.scroll_back(1, total),
            Some(Action::Down) => v.scroll_back(-1, total),
            Some(Action::PageUp) => v.scroll_back(page, total),
            Some(Action::PageDown) => v.scroll_back(-page, total),
            Some(Action::Top) => v.scroll_back(total as isize, total),
            Some(Action::Bottom) => {
                v.back = 0;
                v.follow = true;
                return self.refetch(LOGS.res);
            }
            Some(Action::LogsFollow) => {
                v.follow = !v.follow;
                v.back = 0;
                if v.follow {
                    return self.refetch(LOGS.res);
                }
            }
            Some(Action::LogsWrap) => v.wrap = !v.wrap,
            Some(Action::Filter) => v.searching = true,
            Some(Action::LogsLevel) => {
                v.level = (v.level + 1) % LEVELS.len();
                v.back = 0;
                return self.refetch(LOGS.res);
            }
            Some(Action::LogsArea) if !areas.is_empty() => {
                let at = areas.iter().position(|a| *a == v.area);
                v.area = areas[at.map_or(0, |i| (i + 1) % areas.len())].clone();
                v.back = 0;
                return self.refetch(LOGS.res);
            }
            Some(Action::ToggleUtc) => self.toggle_utc(),
            _ => {}
        }
        Vec::new()
    }

    fn move_selection(&mut self, f: impl FnOnce(&TableView) -> isize) -> Vec<Effect> {
        if let Some(t) = self.tabs[self.current].table_mut() {
            let pos = f(t);
            t.move_to(pos);
        }
        Vec::new()
    }

    pub(super) fn normal_action(&mut self, action: Action, key: &KeyEvent) -> Vec<Effect> {
        let n = self.tabs.len();
        match action {
            Action::GoTab => match key.code {
                KeyCode::Char(c) => match c.to_digit(10) {
                    Some(d) if (1..=n as u32).contains(&d) => self.switch_tab(d as usize - 1),
                    _ => Vec::new(),
                },
                _ => Vec::new(),
            },
            Action::NextTab => self.switch_tab((self.current + 1) % n),
            Action::PrevTab => self.switch_tab((self.current + n - 1) % n),
            Action::Palette => self.open_palette(),
            Action::Help => {
                self.popup = Some(Popup::Help { scroll: 0 });
                Vec::new()
            }
            Action::Filter => {
                if self.current().has_table() {
                    self.filtering = true;
                }
                Vec::new()
            }
            Action::Refresh => {
                self.notify("Refreshing…");
                self.refresh_now()
            }
            Action::Up => self.move_selection(|t| t.selected as isize - 1),
            Action::Down => self.move_selection(|t| t.selected as isize + 1),
            Action::PageUp => self.move_selection(|t| t.selected as isize - t.page_rows() as isize),
            Action::PageDown => {
                self.move_selection(|t| t.selected as isize + t.page_rows() as isize)
            }
            Action::Top => self.move_selection(|_| 0),
            Action::Bottom => self.move_selection(|t| t.visible.len() as isize - 1),
            Action::SortNext | Action::SortPrev => {
                let tab = &mut self.tabs[self.current];
                if let Some(t) = tab.table_mut() {
                    t.cycle_sort(action == Action::SortNext);
                }
                tab.refilter(&self.cache);
                Vec::new()
            }
            Action::Describe => {
                self.open_describe();
                Vec::new()
            }
            Action::Logs => {
                let area = self.current().log_area();
                self.popup = Some(Popup::Logs(crate::popups::logs::LogsView::new(area)));
                // Lines of another area or search must not show under this one's title.
                self.cache.forget(crate::popups::logs::LOGS.res);
                self.refetch(crate::popups::logs::LOGS.res)
            }
            Action::Pause => {
                self.paused = !self.paused;
                if self.paused {
                    self.notify("Live updates paused: p resumes, r refreshes once.");
                    return Vec::new();
                }
                self.notify("Live updates resumed.");
                self.due_fetches()
            }
            Action::Slower | Action::Faster => {
                const SCALES: [i64; 4] = [1, 2, 5, 10];
                let at = SCALES
                    .iter()
                    .position(|s| *s == self.cache.refresh_scale)
                    .unwrap_or(0);
                let next = if action == Action::Slower {
                    (at + 1).min(SCALES.len() - 1)
                } else {
                    at.saturating_sub(1)
                };
                self.cache.refresh_scale = SCALES[next];
                self.notify(match SCALES[next] {
                    1 => "Refresh: each view's own interval (5-60 s).".to_string(),
                    n => format!("Refresh: {n}× slower than each view's own interval."),
                });
                Vec::new()
            }
            Action::ToggleUtc => {
                self.toggle_utc();
                Vec::new()
            }
            Action::ReadOnly(label) => {
                self.notify(format!(
                    "read-only: \"{label}\" changes state; this console runs with --readonly."
                ));
                Vec::new()
            }
            Action::Tab(a) => {
                let intent = self.tabs[self.current].on_action(a, &self.cache);
                self.run_intent(intent)
            }
            Action::Quit => {
                self.should_quit = true;
                Vec::new()
            }
            _ => Vec::new(),
        }
    }
}

/// Minimal single-line editing; returns whether the text changed.
pub fn edit_line(s: &mut String, key: &KeyEvent) -> bool {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    match key.code {
        KeyCode::Char('u') if ctrl => {
            s.clear();
            true
        }
        KeyCode::Char('w') if ctrl => {
            let trimmed = s.trim_end().len();
            let cut = s[..trimmed].rfind(' ').map(|i| i + 1).unwrap_or(0);
            s.truncate(cut);
            true
        }
        KeyCode::Char(c) if !ctrl && !key.modifiers.contains(KeyModifiers::ALT) => {
            s.push(c);
            true
        }
        KeyCode::Backspace => s.pop().is_some(),
        _ => false,
    }
}
