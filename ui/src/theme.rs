//! Colour themes from `themes/<name>.toml`, with the stock themes embedded as a fallback so
//! the console works from any working directory. `NO_COLOR` strips every colour but keeps
//! modifiers (bold/reverse), which together with text markers carry all meaning.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{anyhow, Context};
use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;

const EMBEDDED: [(&str, &str); 3] = [
    ("default", include_str!("../../themes/default.toml")),
    ("light", include_str!("../../themes/light.toml")),
    (
        "high-contrast",
        include_str!("../../themes/high-contrast.toml"),
    ),
];

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
struct ThemeFile {
    name: Option<String>,
    fg: Option<String>,
    bg: Option<String>,
    muted: Option<String>,
    accent: Option<String>,
    ok: Option<String>,
    warn: Option<String>,
    fail: Option<String>,
    selection_fg: Option<String>,
    selection_bg: Option<String>,
    highlight: Option<String>,
    border: Option<String>,
    sparkline: Option<String>,
}

/// Resolved styles used by every widget.
#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    pub name: String,
    pub base: Style,
    pub muted: Style,
    pub accent: Style,
    pub ok: Style,
    pub warn: Style,
    pub fail: Style,
    /// Selected row; always bold (and reversed without colours) so it never relies on colour.
    pub selected: Style,
    /// Matched characters in the palette: colour plus bold+underline.
    pub highlight: Style,
    pub border: Style,
    pub sparkline: Style,
    pub key: Style,
    pub no_color: bool,
}

impl Theme {
    /// Loads theme `name`: `<themes_dir>/<name>.toml`, then `./themes/<name>.toml`, then the
    /// embedded copy. An unknown name is an error that lists the available themes.
    pub fn load(name: &str, themes_dir: Option<&Path>, no_color: bool) -> anyhow::Result<Theme> {
        let file = format!("{name}.toml");
        let mut candidates: Vec<PathBuf> = Vec::new();
        if let Some(dir) = themes_dir {
            candidates.push(dir.join(&file));
        }
        candidates.push(Path::new("themes").join(&file));
        for path in candidates {
            if path.is_file() {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("reading theme {}", path.display()))?;
                return Theme::parse(name, &text, no_color)
                    .with_context(|| format!("theme {}", path.display()));
            }
        }
        match EMBEDDED.iter().find(|(n, _)| *n == name) {
            Some((_, text)) => Theme::parse(name, text, no_color),
            None => Err(anyhow!(
                "unknown theme {name:?} (available: {})",
                EMBEDDED.map(|(n, _)| n).join(", ")
            )),
        }
    }

    /// The embedded default theme (never fails).
    pub fn builtin(no_color: bool) -> Theme {
        Theme::parse("default", EMBEDDED[0].1, no_color).unwrap_or_else(|_| Theme::plain())
    }

    /// Parses theme TOML; missing keys fall back to terminal defaults.
    pub fn parse(name: &str, text: &str, no_color: bool) -> anyhow::Result<Theme> {
        let f: ThemeFile = toml::from_str(text)?;
        let color = |key: &str, v: &Option<String>| -> anyhow::Result<Color> {
            match v {
                None => Ok(Color::Reset),
                Some(s) => Color::from_str(s).map_err(|_| anyhow!("{key}: invalid colour {s:?}")),
            }
        };
        if no_color {
            return Ok(Theme {
                name: f.name.unwrap_or_else(|| name.to_string()),
                ..Theme::plain()
            });
        }
        let fg = |c: Color| Style::new().fg(c);
        let base = Style::new().fg(color("fg", &f.fg)?).bg(color("bg", &f.bg)?);
        Ok(Theme {
            name: f.name.clone().unwrap_or_else(|| name.to_string()),
            base,
            muted: fg(color("muted", &f.muted)?),
            accent: fg(color("accent", &f.accent)?).add_modifier(Modifier::BOLD),
            ok: fg(color("ok", &f.ok)?),
            warn: fg(color("warn", &f.warn)?).add_modifier(Modifier::BOLD),
            fail: fg(color("fail", &f.fail)?).add_modifier(Modifier::BOLD),
            selected: Style::new()
                .fg(color("selection_fg", &f.selection_fg)?)
                .bg(color("selection_bg", &f.selection_bg)?)
                .add_modifier(Modifier::BOLD),
            highlight: fg(color("highlight", &f.highlight)?)
                .add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
            border: fg(color("border", &f.border)?),
            sparkline: fg(color("sparkline", &f.sparkline)?),
            key: Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD),
            no_color: false,
        })
    }

    /// No colours at all: meaning is carried by modifiers and text markers.
    pub fn plain() -> Theme {
        let s = Style::new();
        Theme {
            name: "plain".into(),
            base: s,
            muted: s.add_modifier(Modifier::DIM),
            accent: s.add_modifier(Modifier::BOLD),
            ok: s,
            warn: s.add_modifier(Modifier::BOLD),
            fail: s.add_modifier(Modifier::BOLD),
            selected: s.add_modifier(Modifier::REVERSED | Modifier::BOLD),
            highlight: s.add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
            border: s,
            sparkline: s,
            key: s.add_modifier(Modifier::REVERSED | Modifier::BOLD),
            no_color: true,
        }
    }

    /// Names of the embedded themes.
    pub fn builtin_names() -> [&'static str; 3] {
        EMBEDDED.map(|(n, _)| n)
    }
}

/// `NO_COLOR` set to anything non-empty disables colour (<https://no-color.org>).
pub fn no_color_env() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_themes_parse() {
        for name in Theme::builtin_names() {
            let t = Theme::load(name, None, false).unwrap();
            assert_eq!(t.name, name);
            assert!(t.selected.add_modifier.contains(Modifier::BOLD));
        }
    }

    #[test]
    fn no_color_has_no_colours() {
        let t = Theme::load("default", None, true).unwrap();
        assert_eq!(t.ok.fg, None);
        assert!(t.selected.add_modifier.contains(Modifier::REVERSED));
    }

    #[test]
    fn unknown_theme_lists_available() {
        let e = Theme::load("nope", None, false).unwrap_err().to_string();
        assert!(e.contains("high-contrast"), "{e}");
    }

    #[test]
    fn bad_colour_is_reported() {
        let e = Theme::parse("x", "ok = \"notacolour\"", false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("ok"), "{e}");
    }
}
