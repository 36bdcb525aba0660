//! Prompt templates: the prompt with its literal values masked, so prompts built from one
//! template group together ("top prompts") whatever the user, order or date in them.
//! Masked: uuids and long hex (`{id}`), emails (`{email}`), numbers (`{n}`), words holding
//! digits that look like ids (`{id}`), and quoted literals (`"…"`). The template is made
//! from the already-redacted prompt, so it never holds a value a recogniser caught.

use std::sync::OnceLock;

use regex::{Regex, RegexBuilder};
use sha2::{Digest, Sha256};

/// Longest template text kept for display (the hash covers the whole template).
pub const MAX_TEMPLATE_CHARS: usize = 500;

struct Masks {
    uuid: Regex,
    email: Regex,
    quoted: Regex,
    token: Regex,
    space: Regex,
}

fn masks() -> &'static Masks {
    static M: OnceLock<Masks> = OnceLock::new();
    M.get_or_init(|| {
        let b = |p: &str| RegexBuilder::new(p).build().expect("template mask");
        Masks {
            uuid: b(
                r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b",
            ),
            email: b(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"),
            // "…", `…`, and '…' opened after a non-word character (so "don't" is no quote).
            quoted: b(r#""[^"\n]*"|`[^`\n]*`|(?:^|[\s(\[{=:,])'[^'\n]*'"#),
            token: b(r"[A-Za-z0-9_][A-Za-z0-9_.,:-]*"),
            space: b(r"\s+"),
        }
    })
}

/// The normalised template of a (redacted) prompt.
pub fn template(prompt: &str) -> String {
    let m = masks();
    let t = m.uuid.replace_all(prompt, "{id}");
    let t = m.email.replace_all(&t, "{email}");
    let t = m.quoted.replace_all(&t, |c: &regex::Captures| {
        let q = &c[0];
        // Keep the opening context character of a single-quoted literal.
        let lead: String = q
            .chars()
            .take_while(|ch| !matches!(ch, '"' | '`' | '\''))
            .collect();
        let mark = q[lead.len()..].chars().next().unwrap_or('"');
        format!("{lead}{mark}…{mark}")
    });
    let t = m
        .token
        .replace_all(&t, |c: &regex::Captures| mask_token(&c[0]));
    m.space.replace_all(t.trim(), " ").into_owned()
}

/// One word: a number → `{n}`; a word with digits that is long or hex-like → `{id}`;
/// anything else stays (`gpt4`, `v2`, `3d`).
fn mask_token(tok: &str) -> String {
    // Trailing punctuation is not part of the word ("42," "done.").
    let core = tok.trim_end_matches(['.', ',', ':', '-']);
    let tail = &tok[core.len()..];
    if core.is_empty() || !core.bytes().any(|b| b.is_ascii_digit()) || core.starts_with("REDACTED:")
    {
        return tok.to_string();
    }
    let numeric = core
        .bytes()
        .all(|b| b.is_ascii_digit() || b == b'.' || b == b',' || b == b':' || b == b'-');
    let masked = if numeric {
        "{n}"
    } else if core.len() >= 6
        || core.starts_with("0x")
        || (core.len() >= 4 && core.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        "{id}"
    } else {
        return tok.to_string();
    };
    format!("{masked}{tail}")
}

/// SHA-256 of text, lowercase hex.
pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The display form: at most [`MAX_TEMPLATE_CHARS`] characters.
pub fn display(template: &str) -> String {
    match template.char_indices().nth(MAX_TEMPLATE_CHARS) {
        Some((i, _)) => format!("{}…", &template[..i]),
        None => template.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_of_one_template_share_it() {
        let a = template("Summarise order 12345 for user 3f2a9c1e-0b7d-4c1a-9e2f-1a2b3c4d5e6f, ship to \"Berlin\" by 2026-12-01");
        let b = template("Summarise order 99 for user 00000000-0000-4000-8000-000000000000, ship to \"Paris\" by 2027-01-15");
        assert_eq!(a, b);
        assert_eq!(a, "Summarise order {n} for user {id}, ship to \"…\" by {n}");
        assert_eq!(
            template("Hi   bob@x.io, don't   use gpt4 v2"),
            "Hi {email}, don't use gpt4 v2"
        );
        assert_eq!(
            template("token a1b2c3d4e5 and 0x1f and 3.5 and 42."),
            "token {id} and {id} and {n} and {n}."
        );
        assert_eq!(template("say 'hello' now"), "say '…' now");
        assert_eq!(template("[REDACTED:email] wrote"), "[REDACTED:email] wrote");
        assert_ne!(
            template("translate to French"),
            template("translate to German")
        );
    }
}
