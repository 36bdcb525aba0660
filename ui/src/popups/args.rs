//! Argument form for verbs whose args schema has properties: `key=value` lines or a JSON
//! object, edited in a tui-textarea.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use ratatui::Frame;
use serde_json::{Map, Value};
use tui_textarea::TextArea;

use super::palette::centered;
use crate::model::{Verb, VerbExt};
use crate::theme::Theme;

pub struct ArgsForm {
    pub verb: Verb,
    pub textarea: TextArea<'static>,
    pub error: Option<String>,
}

impl ArgsForm {
    pub fn new(verb: Verb, lines: Vec<String>) -> ArgsForm {
        // The cursor starts after the `=` of the first line still to fill (else at the end
        // of the first line), so typing lands in the value, never in front of `id=`.
        let (row, col) = lines
            .iter()
            .position(|l| l.ends_with('='))
            .map(|r| (r, lines[r].chars().count()))
            .unwrap_or((0, lines.first().map_or(0, |l| l.chars().count())));
        let mut textarea = TextArea::new(lines);
        textarea.set_cursor_line_style(ratatui::style::Style::default());
        textarea.move_cursor(tui_textarea::CursorMove::Jump(
            row.min(u16::MAX as usize) as u16,
            col.min(u16::MAX as usize) as u16,
        ));
        ArgsForm {
            verb,
            textarea,
            error: None,
        }
    }

    pub fn text(&self) -> String {
        self.textarea.lines().join("\n")
    }

    /// Parses the form into the args object, typed by the schema.
    pub fn parse(&self) -> Result<Value, String> {
        parse_args(&self.text(), &self.verb)
    }
}

/// `{...}` JSON, or `key=value` lines (blank lines and `#` comments skipped; empty values
/// omitted). Values are converted to the schema's type; required properties are checked.
pub fn parse_args(text: &str, verb: &Verb) -> Result<Value, String> {
    let props = verb.arg_props();
    let trimmed = text.trim();
    let map: Map<String, Value> = if trimmed.starts_with('{') {
        match serde_json::from_str::<Value>(trimmed) {
            Ok(Value::Object(m)) => m,
            Ok(_) => return Err("JSON arguments must be an object".into()),
            Err(e) => return Err(format!("invalid JSON: {e}")),
        }
    } else {
        let mut m = Map::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((k, v)) = line.split_once('=') else {
                return Err(format!("line {}: expected key=value", n + 1));
            };
            let (k, v) = (k.trim(), v.trim());
            if v.is_empty() {
                continue;
            }
            let ty = props
                .iter()
                .find(|(p, _, _)| p == k)
                .map(|(_, t, _)| t.as_str())
                .unwrap_or("string");
            let value = match ty {
                "integer" => v
                    .parse::<i64>()
                    .map(Value::from)
                    .map_err(|_| format!("{k}: expected an integer, got {v:?}"))?,
                "number" => v
                    .parse::<f64>()
                    .map(Value::from)
                    .map_err(|_| format!("{k}: expected a number, got {v:?}"))?,
                "boolean" => match v {
                    "true" | "yes" | "1" => Value::Bool(true),
                    "false" | "no" | "0" => Value::Bool(false),
                    _ => return Err(format!("{k}: expected true or false, got {v:?}")),
                },
                "array" | "object" => {
                    serde_json::from_str(v).map_err(|e| format!("{k}: expected JSON {ty}: {e}"))?
                }
                _ => Value::from(v.trim_matches('"')),
            };
            m.insert(k.to_string(), value);
        }
        m
    };
    for (k, _, required) in &props {
        if *required && !map.contains_key(k) {
            return Err(format!("missing required argument: {k}"));
        }
    }
    Ok(Value::Object(map))
}

pub fn draw(frame: &mut Frame, area: Rect, f: &ArgsForm, theme: &Theme) {
    let props = f.verb.arg_props();
    let h = (props.len() as u16 + 10).min(area.height);
    let rect = centered(area, 70, h);
    frame.render_widget(Clear, rect);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border)
        .style(theme.base)
        .title(Span::styled(
            format!(" Arguments for {} ", f.verb.name),
            theme.accent,
        ));
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    let [help, edit, err] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Min(2),
        Constraint::Length(2),
    ])
    .areas(inner);
    let schema: Vec<String> = props
        .iter()
        .map(|(k, t, r)| format!("{k}: {t}{}", if *r { " (required)" } else { "" }))
        .collect();
    frame.render_widget(
        Paragraph::new(vec![
            Line::from(Span::styled(
                "One key=value per line, or a JSON object. Ctrl+S sends the dry-run.",
                theme.muted,
            )),
            Line::from(Span::styled(schema.join(" · "), theme.muted)),
        ])
        .wrap(Wrap { trim: true }),
        help,
    );
    frame.render_widget(&f.textarea, edit);
    if let Some(e) = &f.error {
        frame.render_widget(
            Paragraph::new(Span::styled(format!("[FAIL] {e}"), theme.fail))
                .wrap(Wrap { trim: true }),
            err,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn verb() -> Verb {
        serde_json::from_value(json!({
            "name": "tail_logs", "aliases": [], "description": "", "risk": "low",
            "min_role": "readonly", "mutating": false,
            "args": {"type": "object", "required": ["area"], "properties": {
                "area": {"type": "string"}, "lines": {"type": "integer"}}}
        }))
        .unwrap()
    }

    #[test]
    fn kv_lines_are_typed() {
        let v = parse_args("area=queue\nlines=20\n# comment\n", &verb()).unwrap();
        assert_eq!(v, json!({"area": "queue", "lines": 20}));
    }

    #[test]
    fn json_and_errors() {
        assert_eq!(
            parse_args("{\"area\":\"x\"}", &verb()).unwrap(),
            json!({"area": "x"})
        );
        assert!(parse_args("lines=abc\narea=x", &verb())
            .unwrap_err()
            .contains("integer"));
        assert!(parse_args("lines=5", &verb()).unwrap_err().contains("area"));
        assert!(parse_args("nonsense", &verb())
            .unwrap_err()
            .contains("key=value"));
    }
}
