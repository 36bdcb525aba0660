//! Palette ranking over the realistic verb list plus entities.

mod common;

use common::*;
use echopilot_ui::popups::palette::{Filter, Ranked};

fn ranked(q: &str) -> Vec<String> {
    let app = loaded_app();
    let entries = app.palette_entries();
    let mut f = Filter::default();
    let mut out: Vec<Ranked> = Vec::new();
    f.rank(&entries, q, &mut out);
    out.iter().map(|r| entries[r.index].label.clone()).collect()
}

#[test]
fn typo_queries_rank_the_intended_verb_first() {
    let dead = fixture("queue_jobs.json")["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["state"] == "dead")
        .map(|j| j["id"].as_str().unwrap().to_string())
        .unwrap();
    for (q, want) in [
        ("restrt sched", "restart_scheduler"),
        ("restart", "restart_scheduler"),
        ("sched-restart", "restart_scheduler"),
        ("purg dlq", "purge_dlq"),
        ("tail", "tail_logs"),
        ("logs", "tail_logs"),
        ("selfheal", "self_heal_run"),
        ("pauseq", "pause_queue"),
        ("retention", "retention"),
        (dead.as_str(), dead.as_str()),
        ("demo", "demo"),
        ("go to queue", "go to queue"),
        ("retsart", "restart_scheduler"),
    ] {
        let r = ranked(q);
        assert_eq!(
            r.first().map(String::as_str),
            Some(want),
            "query {q:?} → {r:?}"
        );
    }
}

#[test]
fn highlights_cover_the_matched_label_chars() {
    let app = loaded_app();
    let entries = app.palette_entries();
    let mut f = Filter::default();
    let mut out = Vec::new();
    f.rank(&entries, "rsch", &mut out);
    let top = &out[0];
    assert!(top.in_label());
    let text: Vec<char> = entries[top.index].label.chars().collect();
    let hit: String = top.indices.iter().map(|i| text[*i as usize]).collect();
    assert_eq!(hit.to_lowercase(), "rsch");
}

#[test]
fn no_match_is_empty() {
    assert!(ranked("zzzzqqq").is_empty());
}

/// Narrowing from the previous keystroke's matches gives exactly what a fresh full scan
/// gives, for every prefix of several queries (including backspacing and new words).
#[test]
fn incremental_filtering_matches_a_fresh_scan() {
    use echopilot_ui::popups::palette::{Entry, EntryKind, Filter, Target};
    let words = [
        "restart_scheduler",
        "tail_logs",
        "run_job",
        "retry_job",
        "purge_dlq",
        "pause_queue",
    ];
    let entries: Vec<Entry> = (0..600)
        .map(|i| {
            let w = words[i % words.len()];
            Entry::new(
                EntryKind::Entity("queue"),
                format!("{w}_{i}"),
                format!("item {i} kind {w} tenant t{}", i % 7),
                Target::Entity {
                    tab: "Queue",
                    key: i.to_string(),
                },
            )
        })
        .collect();
    let mut incremental = Filter::default();
    let sequences = ["restrt sched", "pur dlq", "tail", "r", "t7 job"];
    for q in sequences {
        let mut typed = String::new();
        let mut keystrokes: Vec<String> = q
            .chars()
            .map(|c| {
                typed.push(c);
                typed.clone()
            })
            .collect();
        // Then backspace twice and type again.
        if q.len() > 3 {
            keystrokes.push(q[..q.len() - 2].to_string());
            keystrokes.push(q.to_string());
        }
        for k in keystrokes {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            incremental.rank(&entries, &k, &mut a);
            Filter::default().rank(&entries, &k, &mut b);
            let ia: Vec<(usize, u32)> = a.iter().map(|r| (r.index, r.score)).collect();
            let ib: Vec<(usize, u32)> = b.iter().map(|r| (r.index, r.score)).collect();
            assert_eq!(ia, ib, "query {k:?}");
        }
    }
}

/// Over 10,000 entries the filter scores greedily and rescores only its head exactly; the
/// first screenfuls must be what scoring every entry exactly (nucleo's optimal match on
/// the label, above description-word matches) would show.
#[test]
fn greedy_prescoring_keeps_the_exact_top_results() {
    use echopilot_ui::popups::palette::{terms_of, Filter, LABEL_TIER};
    use nucleo::pattern::{AtomKind, CaseMatching, Normalization, Pattern};
    use nucleo::{Config, Matcher, Utf32String};
    let entries = common::palette_corpus::queue_items(10_000);
    let mut matcher = Matcher::new(Config::DEFAULT);
    for q in [
        "r",
        "re",
        "rest",
        "restrt sched",
        "q t3",
        "job 99",
        "pay",
        "ue",
    ] {
        let p = Pattern::new(
            q,
            CaseMatching::Ignore,
            Normalization::Smart,
            AtomKind::Fuzzy,
        );
        let mut exact: Vec<(u32, usize, usize)> = entries
            .iter()
            .enumerate()
            .filter_map(|(i, e)| {
                let label = Utf32String::from(e.label.as_str());
                let by_label = p
                    .score(label.slice(..), &mut matcher)
                    .map(|s| s + LABEL_TIER);
                let by_words = e.word_score(&terms_of(q)).map(|(s, _)| s);
                by_label.max(by_words).map(|s| (s, e.label.len(), i))
            })
            .collect();
        exact.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        let mut out = Vec::new();
        let mut f = Filter::default();
        f.rank(&entries, q, &mut out);
        assert_eq!(out.len(), exact.len(), "query {q:?}: same entries match");
        let mut first: Vec<usize> = out.iter().map(|r| r.index).collect();
        // Once refined (the console does it as soon as no key is waiting), the whole
        // order is exact.
        f.refine(&entries, q, &mut out);
        assert!(!f.is_approximate());
        let got: Vec<usize> = out.iter().map(|r| r.index).collect();
        let want: Vec<usize> = exact.iter().map(|e| e.2).collect();
        let head = want.len().min(60);
        assert_eq!(got[..head], want[..head], "query {q:?}: top 60");
        assert_eq!(got, want, "query {q:?}: whole order");
        first.sort_unstable();
        let mut all = want.clone();
        all.sort_unstable();
        assert_eq!(
            first, all,
            "query {q:?}: the fast ranking has the same entries"
        );
    }
}

/// Refining keeps the operator's selection on the same entry.
#[test]
fn refining_keeps_the_selected_entry() {
    use echopilot_ui::popups::palette::{Entry, EntryKind, PaletteState, Target};
    let entries: Vec<Entry> = (0..5000)
        .map(|i| {
            Entry::new(
                EntryKind::Entity("queue"),
                format!("item_{i}"),
                format!("queue item {i} in tenant t{}", i % 13),
                Target::Entity {
                    tab: "Queue",
                    key: i.to_string(),
                },
            )
        })
        .collect();
    let mut p = PaletteState::new(entries);
    p.query = "q t3".into();
    p.refilter();
    assert!(
        p.filter.is_approximate(),
        "a broad description-only query over 5000 entries"
    );
    p.move_by(7);
    let chosen = p.selected_entry().unwrap().label.clone();
    assert!(p.refine(), "refinement changes the ranking state");
    assert_eq!(p.selected_entry().unwrap().label, chosen);
    assert!(!p.refine(), "nothing left to refine");
}
