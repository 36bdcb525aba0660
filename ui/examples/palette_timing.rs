//! Prints the time of each keystroke when typing a query over 10k palette entries, and
//! the time the console spends afterwards (when no key is waiting) to make the order exact.
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
            let keystroke = t.elapsed();
            // What the console does once no key is waiting: make the order exact.
            let t = Instant::now();
            let approximate = f.is_approximate();
            f.refine(&entries, &q[..end], &mut out);
            let refine = t.elapsed();
            if round == 2 {
                println!(
                    "{:>14} {:>6} matches  keystroke {:>6.3} ms  exact order {}",
                    format!("{:?}", &q[..end]),
                    out.len(),
                    keystroke.as_secs_f64() * 1e3,
                    if approximate {
                        format!("+{:.3} ms when idle", refine.as_secs_f64() * 1e3)
                    } else {
                        "already".into()
                    }
                );
            }
        }
    }
}
