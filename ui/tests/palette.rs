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
        ("5112", "5112"),
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
    let text: Vec<char> = entries[top.index].text().chars().collect();
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
                EntryKind::QueueItem,
                format!("{w}_{i}"),
                format!("item {i} kind {w} tenant t{}", i % 7),
                Target::QueueItem(i.to_string()),
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
