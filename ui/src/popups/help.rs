//! Help overlay: every key from the registry plus every verb the backend offers.

use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;

use super::palette::centered;
use crate::app::App;
use crate::commands::{registry, scope_name, Scope};
use crate::model::VerbExt;
use crate::resources::VERBS;

/// A help line: its key (and scope) or verb columns, then the description wrapped under
/// its own column.
fn item(lead: Vec<Span<'static>>, text: &str, width: usize) -> Vec<Line<'static>> {
    crate::util::hanging_lines(lead, text, width, 20)
}

pub fn lines(app: &App, width: usize) -> Vec<Line<'static>> {
    let theme = &app.theme;
    let bold = theme.base.add_modifier(Modifier::BOLD);
    let mut out = vec![Line::from(Span::styled("Keys", bold))];
    let mut seen: Vec<(&str, &str)> = Vec::new();
    // Everyday keys first, dialog keys after.
    let rank = |s: Scope| match s {
        Scope::Normal => 0,
        Scope::Table => 1,
        Scope::OnTab(_) => 2,
        Scope::Always => 3,
        Scope::Modes(_) => 4,
    };
    let mut cmds: Vec<_> = registry(&app.tabs).collect();
    cmds.sort_by_key(|c| rank(c.scope));
    for c in cmds {
        if !c.in_help || (c.mutating && app.config.readonly) {
            continue;
        }
        if seen.contains(&(c.display, c.help)) {
            continue;
        }
        seen.push((c.display, c.help));
        out.extend(item(
            vec![
                Span::styled(format!("  {:<8}", c.display), theme.accent),
                Span::styled(format!("{:<16}", scope_name(c.scope)), theme.muted),
            ],
            c.help,
            width,
        ));
    }
    out.push(Line::default());
    let verbs: Vec<_> = app.visible_verbs().collect();
    out.push(Line::from(Span::styled(
        format!(
            "Verbs ({}) — run them from the palette (: or Ctrl+P)",
            verbs.len()
        ),
        bold,
    )));
    if verbs.is_empty() {
        out.push(Line::from(Span::styled(
            match &app.cache.meta(VERBS.res).error {
                Some(e) => format!("  Verb list unavailable: {e}"),
                None => "  Verb list not loaded yet (GET /api/v1/ops/verbs).".into(),
            },
            theme.muted,
        )));
    }
    for v in verbs {
        let risk = if v.is_high_risk() { "[HIGH]" } else { "[low] " };
        let mut desc = v.description.clone();
        if !v.aliases.is_empty() {
            desc.push_str(&format!(" (aliases: {})", v.aliases.join(", ")));
        }
        desc.push_str(&format!(" · min role {}", v.min_role));
        out.extend(item(
            vec![
                Span::styled(format!("  {:<20}", v.name), theme.accent),
                Span::styled(
                    format!("{risk} "),
                    if v.is_high_risk() {
                        theme.fail
                    } else {
                        theme.muted
                    },
                ),
            ],
            &desc,
            width,
        ));
    }
    out
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App, scroll: u16) {
    let rect = centered(area, 90, area.height.saturating_sub(2));
    frame.render_widget(Clear, rect);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(app.theme.border)
        .style(app.theme.base)
        .title(Span::styled(
            " Help · Esc or ? closes · j/k ↓/↑ PgDn/PgUp g/G scroll ",
            app.theme.accent,
        ));
    let lines = lines(app, block.inner(rect).width as usize);
    // Scrolling stops when the last line is at the bottom (the key handler reads this).
    let max = (lines.len() as u16).saturating_sub(block.inner(rect).height);
    app.help_max_scroll.set(max);
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .scroll((scroll.min(max), 0)),
        rect,
    );
}
