//! Key handling: the registry resolves a key to an action in the current context; global
//! actions are handled here, tab actions by the tab, dialog keys by the dialog's flow.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

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
            Some(Action::CopyId) => {
                let id = v.described.id.clone();
                self.notify(format!("Copied {id} to the clipboard (OSC 52)."));
                return vec![Effect::CopyToClipboard(id)];
            }
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
                match self.current().describe(&self.cache) {
                    Some(d) => self.popup = Some(Popup::Describe(DescribeView::new(d))),
                    None => self.notify("Nothing selected to describe."),
                }
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
