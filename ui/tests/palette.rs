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
