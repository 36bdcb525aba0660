//! PII and secret redaction, Presidio-style: each [`Recogniser`] is a regex (the
//! candidate finder), optional context keywords (some kinds — bare phone numbers — count
//! only next to a word like "phone"), and a [`Validator`] that confirms the candidate
//! (Luhn for cards, mod-97 for IBANs, a real address parse for IPs, neighbour checks so a
//! version string `1.2.3.4.5` is not an address). [`RULES`] is the public list; other areas
//! (security) build a [`Redactor`] from it with their own selection.
//!
//! Overlaps are resolved by rule order: secrets first (a JWT is not three phone numbers),
//! then contact data, then numbers. A match is replaced by `[REDACTED:<name>]`.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;

use regex::{Regex, RegexBuilder};

/// How a candidate match is confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validator {
    /// The regex is specific enough.
    None,
    /// Card numbers: 13–19 digits passing the Luhn checksum.
    Luhn,
    /// IBAN: length 15–34 and the ISO 13616 mod-97 checksum equal to 1.
    Iban,
    /// A dotted quad that parses as an IPv4 address and is not part of a longer dotted run.
    Ipv4,
    /// Parses as an IPv6 address, has at least two colons, stands alone.
    Ipv6,
    /// 7–15 digits; without a leading `+` or separators it needs a context keyword.
    Phone,
}

/// One recogniser of the built-in list.
#[derive(Debug, Clone, Copy)]
pub struct Recogniser {
    /// Stable name: counters, the tenant's disable list, the replacement marker.
    pub name: &'static str,
    /// `pii` or `secret`.
    pub kind: &'static str,
    pub description: &'static str,
    /// Candidate finder. A named group `s` narrows the replaced part (e.g. the token after
    /// `Bearer `).
    pub pattern: &'static str,
    pub validator: Validator,
    /// Words that make a weak candidate count when one occurs within 30 bytes before it
    /// (case-insensitive). Empty: the candidate counts on its own.
    pub context: &'static [&'static str],
}

/// The built-in recognisers, in priority order (earlier wins an overlap).
pub const RULES: &[Recogniser] = &[
    Recogniser {
        name: "private_key",
        kind: "secret",
        description: "PEM private key blocks (RSA, EC, OpenSSH, PKCS#8)",
        pattern: r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[A-Za-z0-9+/=\s:,.-]*?-----END [A-Z0-9 ]*PRIVATE KEY-----",
        validator: Validator::None,
        context: &[],
    },
    Recogniser {
        name: "jwt",
        kind: "secret",
        description: "JSON Web Tokens (three base64url parts, header and payload starting eyJ)",
        pattern: r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{10,}",
        validator: Validator::None,
        context: &[],
    },
    Recogniser {
        name: "aws_access_key",
        kind: "secret",
        description: "AWS access key ids (AKIA…, ASIA…)",
        pattern: r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[0-9A-Z]{16}\b",
        validator: Validator::None,
        context: &[],
    },
    Recogniser {
        name: "aws_secret_key",
        kind: "secret",
        description: "AWS secret access keys next to their name (aws_secret_access_key = …)",
        pattern: r#"(?i)aws_?secret_?(?:access_?)?key["']?\s*[:=]\s*["']?(?P<s>[A-Za-z0-9/+=]{40})"#,
        validator: Validator::None,
        context: &[],
    },
    Recogniser {
        name: "google_api_key",
        kind: "secret",
        description: "Google Cloud API keys (AIza…)",
        pattern: r"\bAIza[0-9A-Za-z_-]{35}",
        validator: Validator::None,
        context: &[],
    },
    Recogniser {
        name: "github_token",
        kind: "secret",
        description: "GitHub tokens (ghp_, gho_, ghu_, ghs_, ghr_, github_pat_)",
        pattern: r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b",
        validator: Validator::None,
        context: &[],
    },
    Recogniser {
        name: "gitlab_token",
        kind: "secret",
        description: "GitLab personal, deploy and runner tokens (glpat-, gldt-, glrt-)",
        pattern: r"\bgl(?:pat|dt|rt|ptt)-[A-Za-z0-9_-]{20,}",
        validator: Validator::None,
        context: &[],
    },
    Recogniser {
        name: "slack_token",
        kind: "secret",
        description: "Slack tokens (xoxb-, xoxp-, …) and incoming-webhook URLs",
        pattern: r"\bxox[abposr]-[A-Za-z0-9-]{10,}|https://hooks\.slack\.com/services/[A-Za-z0-9/_-]+",
        validator: Validator::None,
        context: &[],
    },
    Recogniser {
        name: "stripe_key",
        kind: "secret",
        description: "Stripe secret, restricted and publishable keys (sk_live_, rk_test_, …)",
        pattern: r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}",
        validator: Validator::None,
        context: &[],
    },
    Recogniser {
        name: "openai_key",
        kind: "secret",
        description: "OpenAI-style API keys (sk-…, sk-proj-…; also Anthropic sk-ant-…)",
        pattern: r"\bsk-[A-Za-z0-9_-]{20,}",
        validator: Validator::None,
        context: &[],
    },
    Recogniser {
        name: "telegram_bot_token",
        kind: "secret",
        description: "Telegram bot tokens (<bot id>:<35 characters>)",
        pattern: r"\b\d{8,10}:[A-Za-z0-9_-]{35}",
        validator: Validator::None,
        context: &[],
    },
    Recogniser {
        name: "echopilot_key",
        kind: "secret",
        description: "EchoPilot API keys (ep_ + hex)",
        pattern: r"\bep_[0-9a-f]{32,}",
        validator: Validator::None,
        context: &[],
    },
    Recogniser {
        name: "bearer_token",
        kind: "secret",
        description: "The token of an `Authorization: Bearer …` value",
        pattern: r"(?i)\bbearer\s+(?P<s>[A-Za-z0-9._~+/-]{20,}=*)",
        validator: Validator::None,
        context: &[],
    },
    Recogniser {
        name: "email",
        kind: "pii",
        description: "Email addresses",
        pattern: r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b",
        validator: Validator::None,
        context: &[],
    },
    Recogniser {
        name: "iban",
        kind: "pii",
        description: "IBANs (mod-97 checksum verified)",
        pattern: r"\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b",
        validator: Validator::Iban,
        context: &[],
    },
    Recogniser {
        name: "credit_card",
        kind: "pii",
        description: "Payment card numbers, 13–19 digits with optional spaces or dashes (Luhn verified)",
        pattern: r"\b[0-9](?:[ -]?[0-9]){12,18}\b",
        validator: Validator::Luhn,
        context: &[],
    },
    Recogniser {
        name: "ipv6",
        kind: "pii",
        description: "IPv6 addresses (verified by parsing)",
        pattern: r"[0-9A-Fa-f:]*:[0-9A-Fa-f]*:[0-9A-Fa-f:.]*",
        validator: Validator::Ipv6,
        context: &[],
    },
    Recogniser {
        name: "ipv4",
        kind: "pii",
        description: "IPv4 addresses (verified by parsing; not part of a longer dotted number)",
        pattern: r"\b[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\b",
        validator: Validator::Ipv4,
        context: &[],
    },
    Recogniser {
        name: "phone",
        kind: "pii",
        description: "Phone numbers: +country numbers, (555) 123-4567 style, or digits after a word like phone/tel/call",
        pattern: r"\+?\(?[0-9]{1,4}\)?(?:[ .-]?\(?[0-9]{2,4}\)?){1,5}",
        validator: Validator::Phone,
        context: &["phone", "tel", "call", "mobile", "cell", "whatsapp", "fax", "sms"],
    },
];

/// The names of the built-in recognisers.
pub fn names() -> Vec<&'static str> {
    RULES.iter().map(|r| r.name).collect()
}

/// An extra, tenant-defined pattern.
#[derive(Debug, Clone)]
pub struct Extra {
    pub name: String,
    pub regex: Regex,
}

/// Compile a user-supplied pattern with bounded size (a pathological pattern is refused,
/// not a slow request). `regex` has no backtracking, so matching stays linear.
pub fn compile_extra(pattern: &str) -> Result<Regex, String> {
    RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .dfa_size_limit(1 << 20)
        .build()
        .map_err(|e| {
            let msg = e.to_string();
            // The regex error is multi-line (pattern, caret, message): keep it short.
            msg.lines().last().unwrap_or("invalid").trim().to_string()
        })
}

fn compiled() -> &'static [Regex] {
    static C: OnceLock<Vec<Regex>> = OnceLock::new();
    C.get_or_init(|| {
        RULES
            .iter()
            .map(|r| {
                // ASCII classes keep the automata small; the patterns are ASCII anyway.
                RegexBuilder::new(r.pattern)
                    .unicode(false)
                    .build()
                    .unwrap_or_else(|e| panic!("built-in recogniser {} is invalid: {e}", r.name))
            })
            .collect()
    })
}

/// The outcome of one redaction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Redacted {
    pub text: String,
    /// Redactions per recogniser name (only names that fired).
    pub counts: BTreeMap<String, u64>,
}

impl Redacted {
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }
}

/// A selection of recognisers plus extras, ready to run.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Indexes into [`RULES`] that are on.
    enabled: Vec<usize>,
    extras: Vec<Extra>,
}

impl Redactor {
    /// Every built-in recogniser.
    pub fn all() -> Redactor {
        Redactor {
            enabled: (0..RULES.len()).collect(),
            extras: Vec::new(),
        }
    }

    /// Built-ins except `disabled`, plus `extras` (which run after the built-ins).
    pub fn new(disabled: &[String], extras: Vec<Extra>) -> Redactor {
        Redactor {
            enabled: (0..RULES.len())
                .filter(|i| !disabled.iter().any(|d| d == RULES[*i].name))
                .collect(),
            extras,
        }
    }

    pub fn redact(&self, text: &str) -> Redacted {
        if text.is_empty() {
            return Redacted::default();
        }
        let regexes = compiled();
        // Accepted spans: (start, end, name). Earlier rules claim first.
        let mut spans: Vec<(usize, usize, String)> = Vec::new();
        let overlaps = |spans: &[(usize, usize, String)], s: usize, e: usize| {
            spans.iter().any(|(a, b, _)| s < *b && *a < e)
        };
        for &i in &self.enabled {
            let rule = &RULES[i];
            for caps in regexes[i].captures_iter(text) {
                let Some(m) = caps.name("s").or_else(|| caps.get(0)) else {
                    continue;
                };
                let Some((s, e)) = confirm(rule, text, m.start(), m.end()) else {
                    continue;
                };
                if !overlaps(&spans, s, e) {
                    spans.push((s, e, rule.name.to_string()));
                }
            }
        }
        for x in &self.extras {
            for m in x.regex.find_iter(text) {
                if m.start() < m.end() && !overlaps(&spans, m.start(), m.end()) {
                    spans.push((m.start(), m.end(), x.name.clone()));
                }
            }
        }
        spans.sort_by_key(|(s, _, _)| *s);
        let mut out = String::with_capacity(text.len());
        let mut counts = BTreeMap::new();
        let mut at = 0;
        for (s, e, name) in spans {
            out.push_str(&text[at..s]);
            out.push_str("[REDACTED:");
            out.push_str(&name);
            out.push(']');
            *counts.entry(name).or_insert(0) += 1;
            at = e;
        }
        out.push_str(&text[at..]);
        Redacted { text: out, counts }
    }
}

/// Validate a candidate; the span to replace (validators may trim it), or `None`.
fn confirm(rule: &Recogniser, text: &str, s: usize, e: usize) -> Option<(usize, usize)> {
    let cand = &text[s..e];
    let ok = match rule.validator {
        Validator::None => true,
        Validator::Luhn => luhn(cand) && !after_iban_prefix(text, s),
        Validator::Iban => iban(cand),
        Validator::Ipv4 => standalone(text, s, e, b".") && cand.parse::<Ipv4Addr>().is_ok(),
        Validator::Ipv6 => {
            // The finder is greedy over hex and colons: a trailing ':' or '.' (end of a
            // sentence, "addr:") is not part of the address.
            let t = cand.trim_end_matches(['.', ':']);
            let t = if t.ends_with(':') || cand.ends_with("::") {
                cand
            } else {
                t
            };
            let e2 = s + t.len();
            return (t.matches(':').count() >= 2
                && t.bytes().any(|b| b.is_ascii_hexdigit())
                && standalone(text, s, e2, b"")
                && t.parse::<Ipv6Addr>().is_ok())
            .then_some((s, e2));
        }
        Validator::Phone => return phone(rule, text, s, e),
    };
    ok.then_some((s, e))
}

/// Not glued to a word character (or to one of `also`, followed by a digit) on either side.
fn standalone(text: &str, s: usize, e: usize, also: &[u8]) -> bool {
    let b = text.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let before_ok = s == 0 || {
        let c = b[s - 1];
        !(word(c)
            || c == b':' && also.is_empty()
            || also.contains(&c) && s >= 2 && b[s - 2].is_ascii_digit())
    };
    let after_ok = e >= b.len() || {
        let c = b[e];
        !(word(c)
            || also.is_empty() && c == b':'
            || also.contains(&c) && b.get(e + 1).is_some_and(u8::is_ascii_digit))
    };
    before_ok && after_ok
}

/// Digits right after `DE89 ` belong to an IBAN-shaped string (one that failed mod-97),
/// not to a card.
fn after_iban_prefix(text: &str, s: usize) -> bool {
    let b = text[..s].trim_end_matches(' ').as_bytes();
    b.len() >= 4 && {
        let t = &b[b.len() - 4..];
        t[0].is_ascii_uppercase()
            && t[1].is_ascii_uppercase()
            && t[2].is_ascii_digit()
            && t[3].is_ascii_digit()
    }
}

pub fn luhn(cand: &str) -> bool {
    let digits: Vec<u32> = cand.chars().filter_map(|c| c.to_digit(10)).collect();
    if !(13..=19).contains(&digits.len()) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                *d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

pub fn iban(cand: &str) -> bool {
    let s: Vec<u8> = cand.bytes().filter(|b| *b != b' ').collect();
    if !(15..=34).contains(&s.len()) {
        return false;
    }
    // Move the country code and check digits to the end; letters become 10..35.
    let mut rem: u32 = 0;
    for &c in s[4..].iter().chain(&s[..4]) {
        let v = match c {
            b'0'..=b'9' => (c - b'0') as u32,
            b'A'..=b'Z' => (c - b'A') as u32 + 10,
            _ => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

fn phone(rule: &Recogniser, text: &str, s: usize, e: usize) -> Option<(usize, usize)> {
    let cand = &text[s..e];
    let digits = cand.bytes().filter(u8::is_ascii_digit).count();
    if !(7..=15).contains(&digits) {
        return None;
    }
    let b = text.as_bytes();
    // Not the middle of a longer number, a version or a date.
    if s > 0 && (b[s - 1].is_ascii_alphanumeric() || b[s - 1] == b'.' || b[s - 1] == b'-') {
        return None;
    }
    if e < b.len()
        && (b[e].is_ascii_alphanumeric()
            || (b[e] == b'.' || b[e] == b'-') && b.get(e + 1).is_some_and(u8::is_ascii_digit))
    {
        return None;
    }
    let international = cand.starts_with('+');
    // (555) 123-4567, 555-123-4567, 555.123.4567: the North-American grouping.
    let nanp = {
        let groups: Vec<usize> = cand
            .split(|c: char| !c.is_ascii_digit())
            .filter(|g| !g.is_empty())
            .map(str::len)
            .collect();
        groups == [3, 3, 4] || groups == [1, 3, 3, 4]
    };
    let start = s.saturating_sub(30);
    let start = (0..=start)
        .rev()
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(0);
    let before = text[start..s].to_ascii_lowercase();
    let context = rule.context.iter().any(|w| before.contains(w));
    (international || nanp || context).then_some((s, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(text: &str) -> String {
        Redactor::all().redact(text).text
    }

    #[test]
    fn corpus() {
        let cases: &[(&str, &str)] = &[
            ("mail bob.smith+tag@example.co.uk now", "mail [REDACTED:email] now"),
            ("card 4111 1111 1111 1111 ok", "card [REDACTED:credit_card] ok"),
            ("card 4111-1111-1111-1111", "card [REDACTED:credit_card]"),
            ("order 4111111111111112 shipped", "order 4111111111111112 shipped"),
            ("iban DE89 3704 0044 0532 0130 00 paid", "iban [REDACTED:iban] paid"),
            ("iban GB82WEST12345698765432", "iban [REDACTED:iban]"),
            ("bad iban DE89 3704 0044 0532 0130 01", "bad iban DE89 3704 0044 0532 0130 01"),
            ("from 192.168.1.20 today", "from [REDACTED:ipv4] today"),
            ("version 1.2.3.4.5 released", "version 1.2.3.4.5 released"),
            ("not an ip 999.1.1.1", "not an ip 999.1.1.1"),
            ("v6 2001:db8::8a2e:370:7334 up", "v6 [REDACTED:ipv6] up"),
            ("at fe80::1.", "at [REDACTED:ipv6]."),
            ("time 12:30:45 and std::net::Ipv6Addr", "time 12:30:45 and std::net::Ipv6Addr"),
            ("call +44 20 7946 0958 now", "call [REDACTED:phone] now"),
            ("(555) 123-4567", "[REDACTED:phone]"),
            ("phone: 5551234567", "phone: [REDACTED:phone]"),
            ("ticket 5551234567", "ticket 5551234567"),
            ("on 2026-12-01 at 10:00", "on 2026-12-01 at 10:00"),
            ("key AKIAIOSFODNN7EXAMPLE", "key [REDACTED:aws_access_key]"),
            ("tok ghp_abcdefghijklmnopqrstuvwxyz0123456789", "tok [REDACTED:github_token]"),
            ("gl glpat-abcdefghij0123456789xy", "gl [REDACTED:gitlab_token]"),
            ("slack xoxb-123456789012-abcdefghij", "slack [REDACTED:slack_token]"),
            ("stripe sk_live_abcdefghijklmnop1234", "stripe [REDACTED:stripe_key]"),
            ("openai sk-proj-abcdefghijklmnopqrstuvwx", "openai [REDACTED:openai_key]"),
            ("bot 123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw1", "bot [REDACTED:telegram_bot_token]"),
            ("Authorization: Bearer abcdefghijklmnopqrstuvwxyz.123", "Authorization: Bearer [REDACTED:bearer_token]"),
            ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U", "jwt [REDACTED:jwt]"),
            ("-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nabc\n-----END RSA PRIVATE KEY-----", "[REDACTED:private_key]"),
            ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "aws_secret_access_key = [REDACTED:aws_secret_key]"),
            ("plain text stays, 42 items, 3.14", "plain text stays, 42 items, 3.14"),
        ];
        for (input, want) in cases {
            assert_eq!(&r(input), want, "input: {input:?}");
        }
    }

    #[test]
    fn counts_per_recogniser_and_disable_and_extras() {
        let x = Redactor::all().redact("a@b.io, c@d.io, 10.0.0.1");
        assert_eq!(x.counts.get("email"), Some(&2));
        assert_eq!(x.counts.get("ipv4"), Some(&1));
        assert_eq!(x.total(), 3);
        let no_mail = Redactor::new(
            &["email".into()],
            vec![Extra {
                name: "employee_id".into(),
                regex: compile_extra(r"EMP-\d{6}").unwrap(),
            }],
        );
        let y = no_mail.redact("a@b.io EMP-123456");
        assert_eq!(y.text, "a@b.io [REDACTED:employee_id]");
        assert!(compile_extra("(unclosed").is_err());
    }

    #[test]
    fn checksums() {
        assert!(luhn("4111111111111111"));
        assert!(!luhn("4111111111111112"));
        assert!(iban("DE89370400440532013000"));
        assert!(!iban("DE89370400440532013001"));
    }
}
