//! The one command registry. Every key the console understands is declared here once; the
//! same table resolves key presses, builds the key bar, fills the help overlay and contributes
//! the non-verb entries of the palette. Server verbs (from `/ops/verbs`) join it at runtime.
//!
//! Global and dialog keys are declared in [`COMMANDS`]; each tab declares its own keys next
//! to its code (`Tab::commands`, scope [`Scope::OnTab`]) and [`registry`] joins them, so the
//! registry stays one list without naming every tab here.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::tabs::Tab;

/// A tab-specific action, interpreted by the tab that declared it (`Tab::on_action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TabAction(pub &'static str);

/// Everything a key can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Quit,
    GoTab,
    NextTab,
    PrevTab,
    Palette,
    Help,
    Filter,
    Refresh,
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    /// Declared by a tab, handled by it.
    Tab(TabAction),
    /// Leave the filter editor keeping the filter.
    FilterApply,
    /// Leave the filter editor and clear the filter.
    FilterClear,
    /// Run/open the selected palette entry.
    PaletteRun,
    /// Send the args form (dry-run).
    Submit,
    /// Confirm the shown plan.
    Confirm,
    /// Move between the typed-verb and reason fields.
    NextField,
    Close,
    /// Open the describe view of the selected row.
    Describe,
    /// Sort the current table by the next / previous column state.
    SortNext,
    SortPrev,
    /// In the describe view: switch between the fields and the JSON.
    ToggleJson,
    /// In the describe view: copy the row's id to the clipboard (OSC 52).
    CopyId,
    /// A mutating key pressed in a `--readonly` console (its label): say why nothing happens.
    ReadOnly(&'static str),
    /// Open the logs view of the current tab's area.
    Logs,
    /// Logs view: follow the newest line on/off.
    LogsFollow,
    /// Logs view: wrap long messages on/off.
    LogsWrap,
    /// Logs view: step the level filter (all, info, warn, error).
    LogsLevel,
    /// Logs view: step through the log areas.
    LogsArea,
    /// Show times in UTC or local time.
    ToggleUtc,
    /// Pause or resume live updates.
    Pause,
    /// Refresh less / more often.
    Slower,
    Faster,
}

/// The input mode decides which keys apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Normal,
    Filter,
    Palette,
    ArgsForm,
    /// A plan for a low-risk verb (or a direct run/retry) awaiting `y`.
    ConfirmLow,
    /// A plan for a high-risk verb: type the verb and a reason.
    ConfirmHigh,
    /// Waiting for the backend to answer a dry-run or confirm.
    Pending,
    Result,
    Help,
    /// The describe view of one row (fields or JSON).
    Describe,
    /// The logs view.
    Logs,
    /// Typing the logs view's search.
    LogsSearch,
}

impl Mode {
    /// Modes with a text field: unbound printable keys are typed, never treated as commands.
    pub fn takes_text(self) -> bool {
        matches!(
            self,
            Mode::Filter | Mode::Palette | Mode::ArgsForm | Mode::ConfirmHigh | Mode::LogsSearch
        )
    }
}

/// Where a command applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every mode.
    Always,
    /// Normal mode on any tab.
    Normal,
    /// Normal mode on a tab that shows a table.
    Table,
    /// Normal mode on one tab (its title).
    OnTab(&'static str),
    /// One of these dialog/editor modes.
    Modes(&'static [Mode]),
}

/// One declared command.
#[derive(Debug, Clone, Copy)]
pub struct KeyCommand {
    pub action: Action,
    pub keys: &'static [(KeyCode, KeyModifiers)],
    /// How the keys are shown (`"1-8"`, `": ^P"`).
    pub display: &'static str,
    /// Short label for the key bar.
    pub label: &'static str,
    /// Sentence for the help overlay and the palette.
    pub help: &'static str,
    pub scope: Scope,
    /// Changes backend state (hidden with `--readonly`).
    pub mutating: bool,
    pub in_key_bar: bool,
    /// Listed in the help overlay (off for the other half of a pair already described
    /// there, like `k` beside `j/k`).
    pub in_help: bool,
}

pub const NONE: KeyModifiers = KeyModifiers::NONE;
pub const CTRL: KeyModifiers = KeyModifiers::CONTROL;
pub const SHIFT: KeyModifiers = KeyModifiers::SHIFT;

pub const fn cmd(
    action: Action,
    keys: &'static [(KeyCode, KeyModifiers)],
    display: &'static str,
    label: &'static str,
    help: &'static str,
    scope: Scope,
) -> KeyCommand {
    KeyCommand {
        action,
        keys,
        display,
        label,
        help,
        scope,
        mutating: false,
        in_key_bar: true,
        in_help: true,
    }
}

/// A second binding of something another entry already describes: neither in the key
/// bar nor in the help overlay.
pub const fn paired(mut c: KeyCommand) -> KeyCommand {
    c.in_key_bar = false;
    c.in_help = false;
    c
}

pub const fn hidden(mut c: KeyCommand) -> KeyCommand {
    c.in_key_bar = false;
    c
}

pub const fn mutating(mut c: KeyCommand) -> KeyCommand {
    c.mutating = true;
    c
}

const DIALOGS: &[Mode] = &[
    Mode::Palette,
    Mode::ArgsForm,
    Mode::ConfirmLow,
    Mode::ConfirmHigh,
    Mode::Pending,
    Mode::Result,
    Mode::Help,
    Mode::Describe,
    Mode::Logs,
];

/// The registry, in key-bar order.
pub const COMMANDS: &[KeyCommand] = &[
    // Dialog and editor keys first so they win over Normal-mode bindings.
    cmd(
        Action::FilterApply,
        &[(KeyCode::Enter, NONE)],
        "Enter",
        "search",
        "Logs view: search for the typed text",
        Scope::Modes(&[Mode::LogsSearch]),
    ),
    cmd(
        Action::FilterClear,
        &[(KeyCode::Esc, NONE)],
        "Esc",
        "clear search",
        "Logs view: clear the search",
        Scope::Modes(&[Mode::LogsSearch]),
    ),
    cmd(
        Action::LogsFollow,
        &[(KeyCode::Char('f'), NONE)],
        "f",
        "follow",
        "Logs view: follow the newest line (refreshes every 2 s) or stay where you are",
        Scope::Modes(&[Mode::Logs]),
    ),
    cmd(
        Action::LogsWrap,
        &[(KeyCode::Char('w'), NONE)],
        "w",
        "wrap",
        "Logs view: wrap long messages or cut them with …",
        Scope::Modes(&[Mode::Logs]),
    ),
    cmd(
        Action::Filter,
        &[(KeyCode::Char('/'), NONE)],
        "/",
        "search",
        "Logs view: search the log for a text (on the server: older lines are found too)",
        Scope::Modes(&[Mode::Logs]),
    ),
    cmd(
        Action::LogsLevel,
        &[(KeyCode::Char('v'), NONE)],
        "v",
        "level",
        "Logs view: show all lines, or info, warn, error and above",
        Scope::Modes(&[Mode::Logs]),
    ),
    cmd(
        Action::LogsArea,
        &[(KeyCode::Char('a'), NONE)],
        "a",
        "area",
        "Logs view: the next area's log (server, queue, scheduler, …)",
        Scope::Modes(&[Mode::Logs]),
    ),
    cmd(
        Action::Up,
        &[(KeyCode::Up, NONE), (KeyCode::Char('k'), NONE)],
        "↑ k",
        "older",
        "Logs view: scroll to older lines (stops following)",
        Scope::Modes(&[Mode::Logs]),
    ),
    cmd(
        Action::Down,
        &[(KeyCode::Down, NONE), (KeyCode::Char('j'), NONE)],
        "↓ j",
        "newer",
        "Logs view: scroll to newer lines",
        Scope::Modes(&[Mode::Logs]),
    ),
    hidden(cmd(
        Action::PageUp,
        &[(KeyCode::PageUp, NONE)],
        "PgUp",
        "page older",
        "Logs view: a page of older lines",
        Scope::Modes(&[Mode::Logs]),
    )),
    hidden(cmd(
        Action::PageDown,
        &[(KeyCode::PageDown, NONE)],
        "PgDn",
        "page newer",
        "Logs view: a page of newer lines",
        Scope::Modes(&[Mode::Logs]),
    )),
    hidden(cmd(
        Action::Top,
        &[(KeyCode::Char('g'), NONE), (KeyCode::Home, NONE)],
        "g",
        "oldest",
        "Logs view: the oldest line fetched",
        Scope::Modes(&[Mode::Logs]),
    )),
    hidden(cmd(
        Action::Bottom,
        &[
            (KeyCode::Char('G'), SHIFT),
            (KeyCode::Char('G'), NONE),
            (KeyCode::End, NONE),
        ],
        "G",
        "newest",
        "Logs view: the newest line, following again",
        Scope::Modes(&[Mode::Logs]),
    )),
    cmd(
        Action::ToggleUtc,
        &[(KeyCode::Char('z'), NONE)],
        "z",
        "UTC/local",
        "Logs and describe views: clock times in UTC or in local time",
        Scope::Modes(&[Mode::Logs, Mode::Describe]),
    ),
    hidden(cmd(
        Action::ToggleUtc,
        &[(KeyCode::Char('z'), NONE)],
        "z",
        "UTC/local",
        "Show clock times in UTC or in local time (header says UTC)",
        Scope::Normal,
    )),
    cmd(
        Action::FilterApply,
        &[(KeyCode::Enter, NONE)],
        "Enter",
        "keep filter",
        "Keep the typed filter and return to the table",
        Scope::Modes(&[Mode::Filter]),
    ),
    cmd(
        Action::FilterClear,
        &[(KeyCode::Esc, NONE)],
        "Esc",
        "clear filter",
        "Clear the filter and return to the table",
        Scope::Modes(&[Mode::Filter]),
    ),
    cmd(
        Action::PaletteRun,
        &[(KeyCode::Enter, NONE)],
        "Enter",
        "run/open",
        "Run the selected verb (dry-run first) or open the selected entity",
        Scope::Modes(&[Mode::Palette]),
    ),
    cmd(
        Action::Up,
        &[(KeyCode::Up, NONE), (KeyCode::Char('k'), CTRL)],
        "↑ ^K",
        "prev",
        "Previous palette entry",
        Scope::Modes(&[Mode::Palette]),
    ),
    cmd(
        Action::Down,
        &[
            (KeyCode::Down, NONE),
            (KeyCode::Char('j'), CTRL),
            (KeyCode::Char('n'), CTRL),
        ],
        "↓ ^J",
        "next",
        "Next palette entry",
        Scope::Modes(&[Mode::Palette]),
    ),
    cmd(
        Action::Submit,
        &[(KeyCode::Char('s'), CTRL)],
        "^S",
        "dry-run",
        "Send the arguments for a dry-run plan (Enter adds a line)",
        Scope::Modes(&[Mode::ArgsForm]),
    ),
    cmd(
        Action::Confirm,
        &[(KeyCode::Char('y'), NONE), (KeyCode::Char('Y'), SHIFT)],
        "y",
        "confirm",
        "Confirm a low-risk plan",
        Scope::Modes(&[Mode::ConfirmLow]),
    ),
    cmd(
        Action::Close,
        &[(KeyCode::Char('n'), NONE)],
        "n",
        "cancel",
        "Cancel a low-risk plan",
        Scope::Modes(&[Mode::ConfirmLow]),
    ),
    cmd(
        Action::NextField,
        &[(KeyCode::Tab, NONE), (KeyCode::BackTab, SHIFT)],
        "Tab",
        "next field",
        "Move between the verb-name and reason fields",
        Scope::Modes(&[Mode::ConfirmHigh]),
    ),
    cmd(
        Action::Confirm,
        &[(KeyCode::Enter, NONE)],
        "Enter",
        "confirm",
        "Confirm a high-risk plan once the verb name is typed exactly and a reason given",
        Scope::Modes(&[Mode::ConfirmHigh]),
    ),
    cmd(
        Action::Up,
        &[(KeyCode::Up, NONE), (KeyCode::Char('k'), NONE)],
        "↑ k",
        "scroll up",
        "Scroll the dialog",
        Scope::Modes(&[Mode::Result, Mode::Help]),
    ),
    cmd(
        Action::Down,
        &[(KeyCode::Down, NONE), (KeyCode::Char('j'), NONE)],
        "↓ j",
        "scroll down",
        "Scroll the dialog",
        Scope::Modes(&[Mode::Result, Mode::Help]),
    ),
    cmd(
        Action::Up,
        &[(KeyCode::Up, NONE), (KeyCode::Char('k'), NONE)],
        "↑ k",
        "scroll up",
        "Scroll the describe view",
        Scope::Modes(&[Mode::Describe]),
    ),
    cmd(
        Action::Down,
        &[(KeyCode::Down, NONE), (KeyCode::Char('j'), NONE)],
        "↓ j",
        "scroll down",
        "Scroll the describe view",
        Scope::Modes(&[Mode::Describe]),
    ),
    cmd(
        Action::ToggleJson,
        &[(KeyCode::Char('y'), NONE)],
        "y",
        "json/fields",
        "Describe view: show the row as JSON, or back to its fields",
        Scope::Modes(&[Mode::Describe]),
    ),
    cmd(
        Action::CopyId,
        &[(KeyCode::Char('c'), NONE)],
        "c",
        "copy id",
        "Describe view: copy the full id to the clipboard (OSC 52 escape, works over ssh)",
        Scope::Modes(&[Mode::Describe]),
    ),
    hidden(cmd(
        Action::PageDown,
        &[(KeyCode::PageDown, NONE)],
        "PgDn",
        "page down",
        "Scroll the describe view a page down",
        Scope::Modes(&[Mode::Describe]),
    )),
    hidden(cmd(
        Action::PageUp,
        &[(KeyCode::PageUp, NONE)],
        "PgUp",
        "page up",
        "Scroll the describe view a page up",
        Scope::Modes(&[Mode::Describe]),
    )),
    cmd(
        Action::Close,
        &[(KeyCode::Enter, NONE)],
        "Enter",
        "close",
        "Close the result",
        Scope::Modes(&[Mode::Result]),
    ),
    cmd(
        Action::Close,
        &[(KeyCode::Char('?'), NONE)],
        "?",
        "close",
        "Close the help overlay",
        Scope::Modes(&[Mode::Help]),
    ),
    cmd(
        Action::Close,
        &[(KeyCode::Esc, NONE)],
        "Esc",
        "close",
        "Close the dialog (nothing is sent); in the describe view, back to the table",
        Scope::Modes(DIALOGS),
    ),
    cmd(
        Action::Quit,
        &[(KeyCode::Char('c'), CTRL)],
        "^C",
        "quit",
        "Quit immediately, even with a dialog open",
        Scope::Always,
    ),
    // Normal mode.
    cmd(
        Action::Quit,
        &[(KeyCode::Char('q'), NONE)],
        "q",
        "quit",
        "Quit the console (only when no dialog is open)",
        Scope::Normal,
    ),
    cmd(
        Action::Logs,
        &[(KeyCode::Char('l'), NONE)],
        "l",
        "logs",
        "Logs view of this tab's area: time, level, message, route, status, ms (read-only)",
        Scope::Normal,
    ),
    cmd(
        Action::Pause,
        &[(KeyCode::Char('p'), NONE)],
        "p",
        "pause",
        "Pause live updates (the screen holds still); p again resumes, r still refreshes once",
        Scope::Normal,
    ),
    hidden(cmd(
        Action::Slower,
        &[(KeyCode::Char('-'), NONE)],
        "-",
        "slower",
        "Refresh less often (each resource's interval ×2, ×5, ×10)",
        Scope::Normal,
    )),
    hidden(cmd(
        Action::Faster,
        &[(KeyCode::Char('+'), NONE), (KeyCode::Char('='), NONE)],
        "+",
        "faster",
        "Refresh more often, back to each resource's own interval",
        Scope::Normal,
    )),
    cmd(
        Action::Help,
        &[(KeyCode::Char('?'), NONE)],
        "?",
        "help",
        "Show every key and every verb",
        Scope::Normal,
    ),
    cmd(
        Action::Palette,
        &[(KeyCode::Char(':'), NONE), (KeyCode::Char('p'), CTRL)],
        ": ^P",
        "palette",
        "Open the command palette (verbs, jobs, queue items, tenants)",
        Scope::Normal,
    ),
    hidden(cmd(
        Action::GoTab,
        &[
            (KeyCode::Char('1'), NONE),
            (KeyCode::Char('2'), NONE),
            (KeyCode::Char('3'), NONE),
            (KeyCode::Char('4'), NONE),
            (KeyCode::Char('5'), NONE),
            (KeyCode::Char('6'), NONE),
            (KeyCode::Char('7'), NONE),
            (KeyCode::Char('8'), NONE),
        ],
        "1-8",
        "tab",
        "Go to tab 1-8",
        Scope::Normal,
    )),
    cmd(
        Action::NextTab,
        &[(KeyCode::Tab, NONE)],
        "Tab",
        "next tab",
        "Next tab",
        Scope::Normal,
    ),
    hidden(cmd(
        Action::PrevTab,
        &[(KeyCode::BackTab, SHIFT), (KeyCode::BackTab, NONE)],
        "S-Tab",
        "prev tab",
        "Previous tab",
        Scope::Normal,
    )),
    cmd(
        Action::Filter,
        &[(KeyCode::Char('/'), NONE)],
        "/",
        "filter",
        "Filter the current table (text match on every column)",
        Scope::Table,
    ),
    cmd(
        Action::SortNext,
        &[(KeyCode::Char('>'), NONE)],
        "< >",
        "sort",
        "Sort the table: > steps through column 1 ascending, descending, column 2 …, none; < steps back",
        Scope::Table,
    ),
    hidden(cmd(
        Action::SortPrev,
        &[(KeyCode::Char('<'), NONE)],
        "<",
        "sort back",
        "Sort the table: step back through the columns",
        Scope::Table,
    )),
    cmd(
        Action::Describe,
        &[(KeyCode::Char('d'), NONE), (KeyCode::Enter, NONE)],
        "d ⏎",
        "describe",
        "Describe the selected row: every field, full ids and errors, payload and result (changes nothing)",
        Scope::Table,
    ),
    cmd(
        Action::Refresh,
        &[(KeyCode::Char('r'), NONE)],
        "r",
        "refresh",
        "Refresh this tab now (also resets retry backoff)",
        Scope::Normal,
    ),
    cmd(
        Action::Down,
        &[(KeyCode::Char('j'), NONE), (KeyCode::Down, NONE)],
        "j/k ↓/↑",
        "move",
        "Move the selection: j or ↓ down, k or ↑ up",
        Scope::Table,
    ),
    paired(cmd(
        Action::Up,
        &[(KeyCode::Char('k'), NONE), (KeyCode::Up, NONE)],
        "k ↑",
        "up",
        "Move the selection up (k or ↑)",
        Scope::Table,
    )),
    hidden(cmd(
        Action::PageDown,
        &[(KeyCode::PageDown, NONE)],
        "PgDn",
        "scroll down",
        "Scroll a plan's body down (its input fields stay in view)",
        Scope::Modes(&[Mode::ConfirmLow, Mode::ConfirmHigh, Mode::Pending]),
    )),
    cmd(
        Action::PageDown,
        &[(KeyCode::PageDown, NONE), (KeyCode::Char(' '), NONE)],
        "PgDn",
        "page",
        "Scroll the result or help a page down",
        Scope::Modes(&[Mode::Result, Mode::Help]),
    ),
    hidden(cmd(
        Action::PageUp,
        &[(KeyCode::PageUp, NONE)],
        "PgUp",
        "page up",
        "Scroll the result or help a page up",
        Scope::Modes(&[Mode::Result, Mode::Help]),
    )),
    hidden(cmd(
        Action::Top,
        &[(KeyCode::Char('g'), NONE), (KeyCode::Home, NONE)],
        "g",
        "top",
        "Start of the result or help",
        Scope::Modes(&[Mode::Result, Mode::Help]),
    )),
    cmd(
        Action::Bottom,
        &[
            (KeyCode::Char('G'), SHIFT),
            (KeyCode::Char('G'), NONE),
            (KeyCode::End, NONE),
        ],
        "G",
        "end",
        "End of the result or help",
        Scope::Modes(&[Mode::Result, Mode::Help]),
    ),
    hidden(cmd(
        Action::PageUp,
        &[(KeyCode::PageUp, NONE)],
        "PgUp",
        "scroll up",
        "Scroll a plan's body up",
        Scope::Modes(&[Mode::ConfirmLow, Mode::ConfirmHigh, Mode::Pending]),
    )),
    hidden(cmd(
        Action::PageDown,
        &[(KeyCode::PageDown, NONE)],
        "PgDn",
        "page down",
        "Move the selection a page down",
        Scope::Table,
    )),
    hidden(cmd(
        Action::PageUp,
        &[(KeyCode::PageUp, NONE)],
        "PgUp",
        "page up",
        "Move the selection a page up",
        Scope::Table,
    )),
    hidden(cmd(
        Action::Top,
        &[(KeyCode::Char('g'), NONE), (KeyCode::Home, NONE)],
        "g",
        "top",
        "First row",
        Scope::Table,
    )),
    hidden(cmd(
        Action::Bottom,
        &[
            (KeyCode::Char('G'), SHIFT),
            (KeyCode::Char('G'), NONE),
            (KeyCode::End, NONE),
        ],
        "G",
        "bottom",
        "Last row",
        Scope::Table,
    )),
];

/// What decides which commands apply right now.
#[derive(Debug, Clone, Copy)]
pub struct Context {
    pub mode: Mode,
    /// Title of the current tab.
    pub tab: &'static str,
    /// The current tab shows a selectable, filterable table.
    pub has_table: bool,
    pub readonly: bool,
    /// The current tab's own keys.
    pub tab_commands: &'static [KeyCommand],
}

impl KeyCommand {
    pub fn applies(&self, ctx: &Context) -> bool {
        if self.mutating && ctx.readonly {
            return false;
        }
        match self.scope {
            Scope::Always => true,
            Scope::Normal => ctx.mode == Mode::Normal,
            Scope::Table => ctx.mode == Mode::Normal && ctx.has_table,
            Scope::OnTab(t) => ctx.mode == Mode::Normal && ctx.tab == t,
            Scope::Modes(ms) => ms.contains(&ctx.mode),
        }
    }

    fn matches(&self, key: &KeyEvent) -> bool {
        self.keys.iter().any(|(code, mods)| {
            *code == key.code
                && (key.modifiers - KeyModifiers::SHIFT) == (*mods - KeyModifiers::SHIFT)
        })
    }
}

/// Every declared command: the global ones, then each tab's in tab order.
pub fn registry(tabs: &[Box<dyn Tab>]) -> impl Iterator<Item = &'static KeyCommand> + '_ {
    COMMANDS
        .iter()
        .chain(tabs.iter().flat_map(|t| t.commands().iter()))
}

/// The commands that can apply in `ctx`: global ones first, then the current tab's.
fn in_context(ctx: &Context) -> impl Iterator<Item = &'static KeyCommand> {
    COMMANDS.iter().chain(ctx.tab_commands.iter())
}

/// Resolves a key press to an action in `ctx` (first matching declaration wins). A key
/// that only a mutating command would take, in a `--readonly` console, resolves to
/// [`Action::ReadOnly`] so the console can say why nothing happens.
pub fn resolve(key: &KeyEvent, ctx: &Context) -> Option<Action> {
    if let Some(c) = in_context(ctx).find(|c| c.applies(ctx) && c.matches(key)) {
        return Some(c.action);
    }
    if !ctx.readonly {
        return None;
    }
    let writable = Context {
        readonly: false,
        ..*ctx
    };
    in_context(ctx)
        .find(|c| c.mutating && c.applies(&writable) && c.matches(key))
        .map(|c| Action::ReadOnly(c.label))
}

/// The key bar entries for `ctx`: the most specific first (dialog, this tab, tables, then
/// global), registry order within each, without repeated labels.
pub fn key_bar(ctx: &Context) -> Vec<(&'static str, &'static str)> {
    let rank = |s: Scope| match s {
        Scope::Modes(_) => 0,
        Scope::OnTab(_) => 1,
        Scope::Table => 2,
        Scope::Normal => 3,
        Scope::Always => 4,
    };
    let mut cmds: Vec<&KeyCommand> = in_context(ctx)
        .filter(|c| c.in_key_bar && c.applies(ctx))
        .collect();
    cmds.sort_by_key(|c| rank(c.scope));
    let mut out: Vec<(&str, &str)> = Vec::new();
    for c in cmds {
        if !out.iter().any(|(_, l)| *l == c.label) {
            out.push((c.display, c.label));
        }
    }
    out
}

/// A readable scope name for the help overlay.
pub fn scope_name(scope: Scope) -> String {
    match scope {
        Scope::Always => "anywhere".into(),
        Scope::Normal => "tabs".into(),
        Scope::Table => "tables".into(),
        Scope::OnTab(t) => format!("{t} tab"),
        Scope::Modes(ms) => {
            let names: Vec<&str> = ms
                .iter()
                .map(|m| match m {
                    Mode::Normal => "tabs",
                    Mode::Filter => "filter",
                    Mode::Palette => "palette",
                    Mode::ArgsForm => "args form",
                    Mode::ConfirmLow => "low-risk plan",
                    Mode::ConfirmHigh => "high-risk plan",
                    Mode::Pending => "waiting",
                    Mode::Result => "result",
                    Mode::Help => "help",
                    Mode::Describe => "describe",
                    Mode::Logs => "logs",
                    Mode::LogsSearch => "logs search",
                })
                .collect();
            if ms.len() > 3 {
                "dialogs".into()
            } else if ms.len() > 1
                && ms
                    .iter()
                    .all(|m| matches!(m, Mode::ConfirmLow | Mode::ConfirmHigh | Mode::Pending))
            {
                "plan dialog".into()
            } else {
                names.join(", ")
            }
        }
    }
}

/// Palette entries contributed by keys: tab switches and plain actions.
pub fn palette_actions(tabs: &[Box<dyn Tab>]) -> Vec<(String, String, PaletteAction)> {
    let mut out: Vec<(String, String, PaletteAction)> = tabs
        .iter()
        .enumerate()
        .map(|(i, t)| {
            (
                format!("go to {}", t.title().to_lowercase()),
                format!("tab {} ({})", i + 1, t.title()),
                PaletteAction::Tab(i),
            )
        })
        .collect();
    out.push((
        "refresh".into(),
        "Refresh this tab now".into(),
        PaletteAction::Key(Action::Refresh),
    ));
    out.push((
        "help".into(),
        "Show every key and every verb".into(),
        PaletteAction::Key(Action::Help),
    ));
    out.push((
        "quit".into(),
        "Quit the console".into(),
        PaletteAction::Key(Action::Quit),
    ));
    out
}

/// What a non-verb palette action does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaletteAction {
    /// Go to the tab at this index of the tab list.
    Tab(usize),
    Key(Action),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(mode: Mode, tab: usize) -> Context {
        let tabs = crate::tabs::all();
        let t = &tabs[tab];
        Context {
            mode,
            tab: t.title(),
            has_table: t.has_table(),
            readonly: false,
            tab_commands: t.commands(),
        }
    }

    const JOBS: usize = 1;
    const QUEUE: usize = 2;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn q_only_quits_in_normal_mode() {
        let q = key(KeyCode::Char('q'));
        assert_eq!(resolve(&q, &ctx(Mode::Normal, JOBS)), Some(Action::Quit));
        for m in [
            Mode::Palette,
            Mode::Help,
            Mode::Result,
            Mode::ConfirmLow,
            Mode::ArgsForm,
        ] {
            assert_ne!(resolve(&q, &ctx(m, JOBS)), Some(Action::Quit), "{m:?}");
        }
    }

    #[test]
    fn enter_describes_and_mutations_have_their_own_keys() {
        let e = key(KeyCode::Enter);
        for tab in [JOBS, QUEUE] {
            assert_eq!(resolve(&e, &ctx(Mode::Normal, tab)), Some(Action::Describe));
        }
        assert_eq!(
            resolve(&key(KeyCode::Char('t')), &ctx(Mode::Normal, JOBS)),
            Some(Action::Tab(crate::tabs::jobs::RUN_NOW))
        );
        let retry = KeyEvent::new(KeyCode::Char('R'), SHIFT);
        assert_eq!(
            resolve(&retry, &ctx(Mode::Normal, QUEUE)),
            Some(Action::Tab(crate::tabs::queue::RETRY))
        );
        let ro = Context {
            readonly: true,
            ..ctx(Mode::Normal, QUEUE)
        };
        assert_eq!(
            resolve(&e, &ro),
            Some(Action::Describe),
            "reading is allowed"
        );
        assert_eq!(resolve(&retry, &ro), Some(Action::ReadOnly("retry")));
        assert_eq!(
            resolve(&e, &ctx(Mode::Normal, 0)),
            None,
            "telemetry has no table to describe"
        );
    }

    #[test]
    fn key_bar_has_no_duplicates() {
        let bar = key_bar(&ctx(Mode::Normal, QUEUE));
        let labels: Vec<_> = bar.iter().map(|(_, l)| *l).collect();
        assert!(labels.contains(&"filter") && labels.contains(&"retry"));
        let mut d = labels.clone();
        d.dedup();
        assert_eq!(d.len(), labels.len());
    }
}
