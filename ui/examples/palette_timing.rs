//! Prints the time of each keystroke when typing a query over 10k palette entries.
//! `cargo run --release -p echopilot-ui --example palette_timing`
use echopilot_ui::popups::palette::{Entry, EntryKind, Filter, Target};
use std::time::Instant;

fn main() {
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
    let entries: Vec<Entry> = (0..10_000)
        .map(|i| {
            let v = verbs[i % verbs.len()];
            Entry::new(
                EntryKind::QueueItem,
                format!("{v}_{i}"),
                format!("queue item {i} of kind {v} in tenant t{}", i % 17),
                Target::QueueItem(i.to_string()),
            )
        })
        .collect();
    let mut f = Filter::default();
    let mut out = Vec::new();
    let q = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "restrt sched".into());
    for round in 0..3 {
        f.rank(&entries, "", &mut out);
        for end in 1..=q.len() {
            let t = Instant::now();
            f.rank(&entries, &q[..end], &mut out);
            if round == 2 {
                println!(
                    "{:>14} {:>6} matches {:>8.3} ms",
                    format!("{:?}", &q[..end]),
                    out.len(),
                    t.elapsed().as_secs_f64() * 1e3
                );
            }
        }
    }
}
