//! The large palette corpus that the palette test, the console bench and the
//! `palette_timing` example all rank: `n` queue items over ten verb-like kinds, each
//! with a description. Included by path from `benches/` and `examples/`.

use echopilot_ui::popups::palette::{Entry, EntryKind, Target};

pub fn queue_items(n: usize) -> Vec<Entry> {
    let verbs = [
        "restart_scheduler",
        "tail_logs",
        "run_job",
        "retry_job",
        "purge_dlq",
        "pause_queue",
        "resume_queue",
        "self_heal_run",
        "run_backup",
        "reconcile_payments",
    ];
    (0..n)
        .map(|i| {
            let v = verbs[i % verbs.len()];
            Entry::new(
                EntryKind::Entity("queue"),
                format!("{v}_{i}"),
                format!("queue item {i} of kind {v} in tenant t{}", i % 17),
                Target::Entity {
                    tab: "Queue",
                    key: i.to_string(),
                },
            )
        })
        .collect()
}
