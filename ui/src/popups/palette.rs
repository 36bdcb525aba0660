//! Command palette: nucleo fuzzy matching over verbs, console actions and entities.
//!
//! Three ways an entry matches, ranked in tiers:
//! - an **alias** equal to a query word (`logs` → `tail_logs`) ranks first;
//! - a fuzzy match (nucleo) on the entry's **label** (verb name, job name, …) next, so
//!   `restrt sched` puts `restart_scheduler` first;
//! - last, the **description**, by words: every query word must begin a word of the
//!   description (`dead letter` finds "dead-lettered"). Letters scattered across words do
//!   not count there, so `pause` does not list `purge_dlq`.
//!
//! If nothing matches at all, each query word is retried with one character dropped (on
//! labels), which absorbs the common typo (a swapped or extra letter).

use nucleo::pattern::{AtomKind, CaseMatching, Normalization, Pattern};
use nucleo::{Config, Matcher, Utf32Str, Utf32String};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;

use crate::commands::PaletteAction;
use crate::theme::Theme;

/// What kind of thing an entry is (shown as a tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EntryKind {
    Verb,
    Action,
    /// Something a tab lists (its tag: `job`, `queue`…).
    Entity(&'static str),
    Tenant,
}

impl EntryKind {
    /// Tie-break order between kinds (verbs first).
    pub fn rank(self) -> u8 {
        match self {
            EntryKind::Verb => 0,
            EntryKind::Action => 1,
            EntryKind::Entity(_) => 2,
            EntryKind::Tenant => 3,
        }
    }

    pub fn tag(self) -> &'static str {
        match self {
            EntryKind::Verb => "verb",
            EntryKind::Action => "action",
            EntryKind::Entity(tag) => tag,
            EntryKind::Tenant => "tenant",
        }
    }
}

/// What Enter does with an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Verb(String),
    Action(PaletteAction),
    /// Open the tab with this title and select `key` there (`Tab::open_entity`).
    Entity {
        tab: &'static str,
        key: String,
    },
    Tenant(String),
}

/// One searchable entry: a label matched fuzzily, aliases matched exactly, a description
/// matched by words. The label is pre-converted once for nucleo.
#[derive(Debug, Clone)]
pub struct Entry {
    pub kind: EntryKind,
    pub label: String,
    pub detail: String,
    pub target: Target,
    /// Other names, matched only as whole query words (`logs`, `tail`).
    pub aliases: Vec<String>,
    /// A verb's risk (`low`, `high`), shown in its own column.
    pub risk: Option<String>,
    label_h: Utf32String,
    /// The description's words, lower-case, with the char index each starts at.
    words: Vec<(u32, String)>,
}

impl Entry {
    pub fn new(kind: EntryKind, label: String, detail: String, target: Target) -> Entry {
        Entry {
            kind,
            label_h: Utf32String::from(label.as_str()),
            words: words_of(&detail),
            label,
            detail,
            target,
            aliases: Vec::new(),
            risk: None,
        }
    }

    pub fn with_aliases(mut self, aliases: Vec<String>) -> Entry {
        self.aliases = aliases.into_iter().map(|a| a.to_lowercase()).collect();
        self
    }

    pub fn with_risk(mut self, risk: impl Into<String>) -> Entry {
        self.risk = Some(risk.into());
        self
    }

    /// The displayed text (label, two spaces, detail).
    pub fn text(&self) -> String {
        format!("{}  {}", self.label, self.detail)
    }

    /// Score of a match through aliases and description words: every query word must be
    /// an alias, or begin a word of the description. Returns the score and the char
    /// indices of the description that matched.
    pub fn word_score(&self, terms: &[String]) -> Option<(u32, Vec<u32>)> {
        if terms.is_empty() {
            return None;
        }
        let mut score = 0u32;
        let mut indices = Vec::new();
        for t in terms {
            if self.aliases.iter().any(|a| a == t) {
                score += ALIAS_TIER;
                continue;
            }
            // `sched-restart` is two words to the description.
            let parts = words_of(t);
            if parts.is_empty() {
                return None;
            }
            for (_, part) in &parts {
                let tl = part.chars().count() as u32;
                let best = self
                    .words
                    .iter()
                    .filter(|(_, w)| w.starts_with(part.as_str()))
                    // A whole word beats a prefix of a longer one; the earlier breaks ties.
                    .min_by_key(|(at, w)| (w.len() != part.len(), *at))?;
                score += 16 * tl + if best.1.len() == part.len() { 8 } else { 0 };
                indices.extend(best.0..best.0 + tl);
            }
        }
        Some((score, indices))
    }
}

/// Splits a description into lower-case words (runs of letters and digits) with the char
/// index of each.
fn words_of(text: &str) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut start = 0u32;
    for (i, ch) in text.chars().enumerate() {
        if ch.is_alphanumeric() {
            if cur.is_empty() {
                start = i as u32;
            }
            cur.extend(ch.to_lowercase());
        } else if !cur.is_empty() {
            out.push((start, std::mem::take(&mut cur)));
        }
    }
    if !cur.is_empty() {
        out.push((start, cur));
    }
    out
}

/// The query's words, lower-case, for alias and description matching.
pub fn terms_of(query: &str) -> Vec<String> {
    query.split_whitespace().map(str::to_lowercase).collect()
}

/// One ranked result: entry index, score, matched char positions — in the label for a
/// label match ([`Ranked::in_label`]), else in the description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ranked {
    pub index: usize,
    pub score: u32,
    pub indices: Vec<u32>,
}

impl Ranked {
    /// Whether the entry matched on its label (the indices point into the label).
    pub fn in_label(&self) -> bool {
        (LABEL_TIER..ALIAS_TIER).contains(&self.score)
    }
}

/// Bonus that lifts every label match above every description-only match.
pub const LABEL_TIER: u32 = 1 << 20;
/// Score of a query word equal to an alias: above every label match.
pub const ALIAS_TIER: u32 = 1 << 24;
/// Only this many top results get highlight indices (they are all that can be shown).
pub const HIGHLIGHT_TOP: usize = 64;
/// Results ranked with nucleo's exact (optimal) score; the rest keep the greedy order.
pub const RESCORE_TOP: usize = 256;

/// Reusable matcher state (nucleo's matcher holds scratch memory; keep one per palette).
///
/// Typing usually extends the query, and a fuzzy match can only get harder as the query
/// grows (every atom keeps or gains characters, or a new atom is added), so the entries
/// that matched the previous query are the only candidates for the next one. The filter
/// remembers them and rescans just those, which is what keeps 10k entries well under a
/// millisecond per keystroke.
pub struct Filter {
    matcher: Matcher,
    pattern: Pattern,
    /// Query, entry-set identity and matching indices of the last plain (non-fallback) run.
    last: Option<LastRun>,
    /// The last ranking ordered its tail by greedy scores: [`Filter::refine`] makes it exact.
    approximate: bool,
    /// The query being ranked (its words score aliases and descriptions).
    query_text: String,
}

struct LastRun {
    query: String,
    entries: (usize, usize),
    matched: Vec<usize>,
}

impl Default for Filter {
    fn default() -> Self {
        Filter {
            matcher: Matcher::new(Config::DEFAULT),
            pattern: Pattern::default(),
            last: None,
            approximate: false,
            query_text: String::new(),
        }
    }
}

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Filter")
    }
}

fn pattern(q: &str) -> Pattern {
    Pattern::new(
        q,
        CaseMatching::Ignore,
        Normalization::Smart,
        AtomKind::Fuzzy,
    )
}

impl Filter {
    /// Ranks `entries` against `query` into `out` (best first). An empty query keeps the
    /// given order. Highlight indices are filled for the first [`HIGHLIGHT_TOP`] results.
    pub fn rank(&mut self, entries: &[Entry], query: &str, out: &mut Vec<Ranked>) {
        out.clear();
        self.approximate = false;
        if query.trim().is_empty() {
            out.extend((0..entries.len()).map(|index| Ranked {
                index,
                score: 0,
                indices: Vec::new(),
            }));
            return;
        }
        self.pattern = pattern(query);
        self.query_text = query.to_string();
        let identity = (entries.as_ptr() as usize, entries.len());
        let narrowed = self.last.take().filter(|l| {
            l.entries == identity && query.starts_with(&l.query) && !l.query.trim().is_empty()
        });
        let terms = terms_of(query);
        match narrowed {
            Some(l) => {
                // A longer query matches a subset of what the shorter one matched, except
                // through an alias (`log` → `logs`): entries with aliases are rescanned.
                let mut candidates = l.matched;
                candidates.extend((0..entries.len()).filter(|&i| !entries[i].aliases.is_empty()));
                candidates.sort_unstable();
                candidates.dedup();
                self.score_some(
                    entries,
                    candidates.into_iter(),
                    &terms,
                    out,
                    Scoring::Greedy,
                )
            }
            None => self.score_some(entries, 0..entries.len(), &terms, out, Scoring::Greedy),
        }
        if !out.is_empty() {
            self.last = Some(LastRun {
                query: query.to_string(),
                entries: identity,
                matched: out.iter().map(|r| r.index).collect(),
            });
        }
        let exact = out.is_empty();
        if exact {
            // Typo fallback: drop one character from each word in turn (rare, so scored
            // exactly right away).
            let words: Vec<&str> = query.split_whitespace().collect();
            for (wi, w) in words.iter().enumerate() {
                let chars: Vec<char> = w.chars().collect();
                if chars.len() < 4 {
                    continue;
                }
                for drop in 0..chars.len() {
                    let variant: String = chars
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| *i != drop)
                        .map(|(_, c)| *c)
                        .collect();
                    let mut q: Vec<String> = words.iter().map(|s| s.to_string()).collect();
                    q[wi] = variant;
                    self.pattern = pattern(&q.join(" "));
                    let mut more = Vec::new();
                    self.score_some(
                        entries,
                        0..entries.len(),
                        &[],
                        &mut more,
                        Scoring::LabelOnly,
                    );
                    for r in more {
                        match out.iter_mut().find(|o| o.index == r.index) {
                            Some(o) if o.score >= r.score => {}
                            Some(o) => *o = r,
                            None => out.push(r),
                        }
                    }
                }
            }
        }
        self.rescore_head(entries, out, exact);
        self.fill_indices(entries, out, query);
    }

    /// True when the last [`Filter::rank`] ordered results beyond the first
    /// [`RESCORE_TOP`] by greedy scores only.
    pub fn is_approximate(&self) -> bool {
        self.approximate
    }

    /// Rescore every result of the last [`Filter::rank`] exactly and sort them all. The
    /// console calls this when no input is waiting, so a keystroke shows its results at
    /// once and the exact order follows before the next one.
    pub fn refine(&mut self, entries: &[Entry], query: &str, out: &mut [Ranked]) {
        if !self.approximate {
            return;
        }
        self.pattern = pattern(query);
        self.query_text = query.to_string();
        let terms = terms_of(query);
        for r in out.iter_mut() {
            if let Some(s) = self.optimal(&entries[r.index], &terms) {
                r.score = s;
            }
        }
        self.rescore_head(entries, out, true);
        self.fill_indices(entries, out, query);
    }

    /// Candidates were scored greedily (linear time; optimal scoring of thousands of long
    /// descriptions is what made broad queries cost milliseconds). Only the best
    /// [`RESCORE_TOP`] by that score — more than a screen can show — are rescored with
    /// nucleo's optimal scoring and sorted exactly; the rest follow in greedy order.
    /// `exact`: the scores are optimal already (typo fallback); only sort.
    fn rescore_head(&mut self, entries: &[Entry], out: &mut [Ranked], exact: bool) {
        // Best score first; ties: kind, then shorter label, then entry order. One integer
        // key per result keeps sorting thousands of matches cheap (no string compares).
        let key = |r: &Ranked| {
            let e = &entries[r.index];
            ((u32::MAX - r.score) as u128) << 96
                | (e.kind.rank() as u128) << 64
                | (e.label.len().min(u32::MAX as usize) as u128) << 32
                | r.index as u128
        };
        let head = if exact {
            out.len()
        } else {
            out.len().min(RESCORE_TOP)
        };
        self.approximate = head < out.len();
        if out.len() > head {
            out.select_nth_unstable_by_key(head - 1, key);
        }
        if !exact {
            let terms = terms_of(&self.query_text);
            for r in out[..head].iter_mut() {
                if let Some(s) = self.optimal(&entries[r.index], &terms) {
                    r.score = s;
                }
            }
        }
        out[..head].sort_unstable_by_key(key);
        // The tail (beyond any screen until scrolled to) by score, then entry order: a
        // key from the result alone, no lookup into the entries per comparison.
        out[head..].sort_unstable_by_key(|r| ((u32::MAX - r.score) as u64) << 32 | r.index as u64);
    }

    /// The exact score: an alias or description-word match, or nucleo's optimal label
    /// score with the label tier, whichever is higher (None only if the entry no longer
    /// matches the current pattern, e.g. a typo-fallback result).
    fn optimal(&mut self, e: &Entry, terms: &[String]) -> Option<u32> {
        let label = self
            .pattern
            .score(e.label_h.slice(..), &mut self.matcher)
            .map(|s| s + LABEL_TIER);
        let words = e.word_score(terms).map(|(s, _)| s);
        label.max(words)
    }

    /// Linear-time score: greedy for fuzzy atoms, nucleo's own scoring for the rest
    /// (exact, prefix, negated … atoms are linear already). Matches exactly the entries
    /// the optimal scoring matches; only the score can be lower.
    fn greedy(&mut self, hay: Utf32Str<'_>) -> Option<u32> {
        let mut total = 0u32;
        for atom in &self.pattern.atoms {
            let s = if atom.kind == AtomKind::Fuzzy && !atom.negative {
                // What Atom::score sets for our patterns (CaseMatching::Ignore,
                // Normalization::Smart).
                self.matcher.config.ignore_case = true;
                self.matcher.config.normalize = true;
                self.matcher.fuzzy_match_greedy(hay, atom.needle_text())
            } else {
                atom.score(hay, &mut self.matcher)
            };
            total += s? as u32;
        }
        Some(total)
    }

    fn score_some(
        &mut self,
        entries: &[Entry],
        candidates: impl Iterator<Item = usize>,
        terms: &[String],
        out: &mut Vec<Ranked>,
        scoring: Scoring,
    ) {
        for index in candidates {
            let e = &entries[index];
            let score = match scoring {
                Scoring::Greedy => {
                    let label = self.greedy(e.label_h.slice(..)).map(|s| s + LABEL_TIER);
                    label.max(e.word_score(terms).map(|(s, _)| s))
                }
                Scoring::LabelOnly => self
                    .pattern
                    .score(e.label_h.slice(..), &mut self.matcher)
                    .map(|s| s + LABEL_TIER),
            };
            if let Some(score) = score {
                out.push(Ranked {
                    index,
                    score,
                    indices: Vec::new(),
                });
            }
        }
    }

    fn fill_indices(&mut self, entries: &[Entry], out: &mut [Ranked], query: &str) {
        let primary = pattern(query);
        let terms = terms_of(query);
        for r in out.iter_mut().take(HIGHLIGHT_TOP) {
            let e = &entries[r.index];
            if !r.in_label() {
                // An alias or description match: the description words that matched.
                r.indices = e.word_score(&terms).map(|(_, i)| i).unwrap_or_default();
                r.indices.sort_unstable();
                r.indices.dedup();
                continue;
            }
            let mut idx = Vec::new();
            let hay: Utf32Str<'_> = e.label_h.slice(..);
            if primary.indices(hay, &mut self.matcher, &mut idx).is_none() {
                // Matched only via the typo fallback: highlight what the pattern still finds
                // word by word.
                idx.clear();
                for atom in &primary.atoms {
                    let mut part = Vec::new();
                    if atom.indices(hay, &mut self.matcher, &mut part).is_some() {
                        idx.extend(part);
                    }
                }
            }
            idx.sort_unstable();
            idx.dedup();
            r.indices = idx;
        }
    }
}

/// How [`Filter::score_some`] scores: greedy label scores plus words (the first pass), or
/// exact label scores only (the typo fallback, which never matches descriptions).
#[derive(Clone, Copy)]
enum Scoring {
    Greedy,
    LabelOnly,
}

/// Palette dialog state.
#[derive(Debug, Default)]
pub struct PaletteState {
    pub query: String,
    pub selected: usize,
    pub entries: Vec<Entry>,
    pub results: Vec<Ranked>,
    pub filter: Filter,
}

impl PaletteState {
    pub fn new(entries: Vec<Entry>) -> PaletteState {
        let mut p = PaletteState {
            entries,
            ..PaletteState::default()
        };
        p.refilter();
        p
    }

    pub fn refilter(&mut self) {
        let mut results = std::mem::take(&mut self.results);
        self.filter.rank(&self.entries, &self.query, &mut results);
        self.results = results;
        self.selected = 0;
    }

    /// Make an approximate ranking exact, keeping the selected entry selected. Returns
    /// whether anything changed (then the palette needs a redraw).
    pub fn refine(&mut self) -> bool {
        if !self.filter.is_approximate() {
            return false;
        }
        let selected = self.results.get(self.selected).map(|r| r.index);
        let mut results = std::mem::take(&mut self.results);
        self.filter.refine(&self.entries, &self.query, &mut results);
        self.results = results;
        if let Some(index) = selected {
            self.selected = self
                .results
                .iter()
                .position(|r| r.index == index)
                .unwrap_or(0);
        }
        true
    }

    pub fn selected_entry(&self) -> Option<&Entry> {
        self.results
            .get(self.selected)
            .and_then(|r| self.entries.get(r.index))
    }

    pub fn move_by(&mut self, delta: isize) {
        if self.results.is_empty() {
            return;
        }
        let n = self.results.len() as isize;
        self.selected = (self.selected as isize + delta).rem_euclid(n) as usize;
    }
}

/// Centered rectangle `pct_w`% wide and `h` rows high (clamped to the area).
pub fn centered(area: Rect, pct_w: u16, h: u16) -> Rect {
    let w = (area.width * pct_w / 100).max(40.min(area.width));
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

pub fn draw(frame: &mut Frame, area: Rect, p: &PaletteState, theme: &Theme) {
    let rect = centered(area, 80, area.height.saturating_sub(4).min(20));
    frame.render_widget(Clear, rect);
    let title = format!(
        " Command palette · {} of {} ",
        p.results.len(),
        p.entries.len()
    );
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border)
        .title(Span::styled(title, theme.accent))
        .style(theme.base);
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    let [input, list] = Layout::vertical([Constraint::Length(2), Constraint::Min(1)]).areas(inner);
    let prompt = Line::from(vec![
        Span::styled(": ", theme.accent),
        Span::raw(p.query.as_str()),
        Span::styled("█", theme.muted),
    ]);
    frame.render_widget(Paragraph::new(vec![prompt, Line::default()]), input);

    let rows = list.height as usize;
    if p.results.is_empty() {
        let msg = if p.entries.is_empty() {
            "Nothing to search yet: verbs and entities load from the backend."
        } else {
            "No match."
        };
        frame.render_widget(Paragraph::new(Span::styled(msg, theme.muted)), list);
        return;
    }
    let offset = p.selected.saturating_sub(rows.saturating_sub(1));
    let width = list.width as usize;
    let shown: Vec<(usize, &Ranked)> = p
        .results
        .iter()
        .enumerate()
        .skip(offset)
        .take(rows)
        .collect();
    // Columns: marker, kind, name (as wide as the widest shown, at most a third of the
    // row), risk, then the description in what is left.
    let name_w = shown
        .iter()
        .map(|(_, r)| p.entries[r.index].label.chars().count())
        .max()
        .unwrap_or(0)
        .clamp(8, (width / 3).max(8));
    let desc_w = width.saturating_sub(2 + KIND_W + name_w + 1 + RISK_W);
    let lines: Vec<Line> = shown
        .into_iter()
        .map(|(i, r)| {
            let e = &p.entries[r.index];
            let sel = i == p.selected;
            let mut spans = vec![
                Span::styled(if sel { "> " } else { "  " }, theme.accent),
                Span::styled(format!("{:<KIND_W$}", e.kind.tag()), theme.muted),
            ];
            let label_hits: &[u32] = if r.in_label() { &r.indices } else { &[] };
            spans.extend(highlighted(
                &e.label,
                label_hits,
                name_w,
                theme.base.add_modifier(Modifier::BOLD),
                theme,
            ));
            spans.push(Span::raw(" "));
            let risk = e.risk.as_deref().unwrap_or("");
            let risk_style = if risk == "low" || risk.is_empty() {
                theme.muted
            } else {
                theme.warn
            };
            spans.push(Span::styled(format!("{risk:<RISK_W$}"), risk_style));
            let desc_hits: &[u32] = if r.in_label() { &[] } else { &r.indices };
            let mut desc = e.detail.clone();
            if !e.aliases.is_empty() {
                desc.push_str(&format!(" (aka {})", e.aliases.join(", ")));
            }
            spans.extend(highlighted(&desc, desc_hits, desc_w, theme.muted, theme));
            let line = Line::from(spans);
            if sel {
                line.style(theme.selected)
            } else {
                line
            }
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), list);
}

/// Width of the kind column (`verb`, `action`, `tenant`, …).
const KIND_W: usize = 7;
/// Width of the risk column (`high`, `low`).
const RISK_W: usize = 5;

/// `text` in exactly `width` columns (padded, or cut with `…`), matched chars in the
/// highlight style and the rest in `style`.
fn highlighted<'a>(
    text: &str,
    indices: &[u32],
    width: usize,
    style: ratatui::style::Style,
    theme: &Theme,
) -> Vec<Span<'a>> {
    let count = text.chars().count();
    let (take, ellipsis) = if count > width {
        (width.saturating_sub(1), width > 0)
    } else {
        (count, false)
    };
    let mut spans = Vec::new();
    let mut cur = String::new();
    let mut cur_style = None;
    for (i, ch) in text.chars().take(take).enumerate() {
        let st = if indices.binary_search(&(i as u32)).is_ok() {
            theme.highlight
        } else {
            style
        };
        if cur_style != Some(st) && !cur.is_empty() {
            spans.push(Span::styled(
                std::mem::take(&mut cur),
                cur_style.unwrap_or(st),
            ));
        }
        cur_style = Some(st);
        cur.push(ch);
    }
    if let Some(st) = cur_style {
        spans.push(Span::styled(cur, st));
    }
    if ellipsis {
        spans.push(Span::styled("…", style));
    } else if count < width {
        spans.push(Span::raw(" ".repeat(width - count)));
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verbs() -> Vec<Entry> {
        [
            (
                "restart_scheduler",
                "restart-scheduler  Restart the job scheduler gracefully",
            ),
            ("run_job", "Run one scheduled job now"),
            ("retry_job", "Move a dead queue job back to queued"),
            ("purge_dlq", "Delete every dead-lettered queue job"),
            ("pause_queue", "Stop workers from claiming queue jobs"),
            ("resume_queue", "Let workers claim queue jobs again"),
            ("self_heal_run", "Run the safe self-heal remediations now"),
            (
                "tail_logs",
                "Show the last lines of an area's log, secrets redacted",
            ),
        ]
        .into_iter()
        .map(|(n, d)| Entry::new(EntryKind::Verb, n.into(), d.into(), Target::Verb(n.into())))
        .chain(
            ["scheduler_tick", "retention", "self_heal", "health_probe"].map(|j| {
                Entry::new(
                    EntryKind::Entity("job"),
                    j.into(),
                    "scheduled job".into(),
                    Target::Entity {
                        tab: "Jobs",
                        key: j.into(),
                    },
                )
            }),
        )
        .collect()
    }

    fn top(q: &str) -> String {
        let e = verbs();
        let mut f = Filter::default();
        let mut out = Vec::new();
        f.rank(&e, q, &mut out);
        out.first()
            .map(|r| e[r.index].label.clone())
            .unwrap_or_default()
    }

    #[test]
    fn ranking() {
        assert_eq!(top("restrt sched"), "restart_scheduler");
        assert_eq!(top("restart"), "restart_scheduler");
        assert_eq!(top("purge"), "purge_dlq");
        assert_eq!(top("tick"), "scheduler_tick");
        assert_eq!(top("retsart"), "restart_scheduler");
        assert_eq!(top("dead letter"), "purge_dlq");
    }

    fn all(q: &str, entries: &[Entry]) -> Vec<String> {
        let mut f = Filter::default();
        let mut out = Vec::new();
        f.rank(entries, q, &mut out);
        out.iter().map(|r| entries[r.index].label.clone()).collect()
    }

    #[test]
    fn descriptions_match_whole_words_not_scattered_letters() {
        let e = verbs();
        // "pause" spelled out across "purge … dead-lettered queue" or "restart … scheduler"
        // is no match: only entries with the word (or the name) are listed.
        assert_eq!(all("pause", &e), vec!["pause_queue"]);
        // A word of the description, or the beginning of one.
        assert_eq!(all("remediations", &e), vec!["self_heal_run"]);
        assert_eq!(all("remed", &e), vec!["self_heal_run"]);
        // Not the middle of a word.
        assert!(all("ediations", &e).is_empty());
    }

    #[test]
    fn aliases_match_exactly_and_rank_first() {
        let e: Vec<Entry> = verbs()
            .into_iter()
            .map(|x| match x.label.as_str() {
                "retry_job" => x.with_aliases(vec!["requeue".into()]),
                "tail_logs" => x.with_aliases(vec!["logs".into(), "tail".into()]),
                _ => x,
            })
            .collect();
        // The alias beats a fuzzy match of the name (`re…queue` in resume_queue).
        assert_eq!(all("requeue", &e), vec!["retry_job", "resume_queue"]);
        // Part of an alias is not an alias.
        assert!(!all("requ", &e).contains(&"retry_job".to_string()));
        assert_eq!(
            all("logs", &e).first().map(String::as_str),
            Some("tail_logs")
        );
        // Typing an alias out letter by letter finds it at the last letter (the filter
        // narrows from the previous keystroke's matches, so aliases are looked at again).
        let mut f = Filter::default();
        let mut out = Vec::new();
        for q in ["r", "re", "req", "requ", "reque", "requeu", "requeue"] {
            f.rank(&e, q, &mut out);
        }
        assert_eq!(e[out[0].index].label, "retry_job");
    }

    #[test]
    fn empty_query_keeps_order_and_highlights_match() {
        let e = verbs();
        let mut f = Filter::default();
        let mut out = Vec::new();
        f.rank(&e, "", &mut out);
        assert_eq!(out.len(), e.len());
        f.rank(&e, "rsch", &mut out);
        assert_eq!(e[out[0].index].label, "restart_scheduler");
        assert_eq!(out[0].indices.len(), 4);
    }
}
