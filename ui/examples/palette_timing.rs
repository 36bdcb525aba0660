//! Prints the time of each keystroke when typing a query over 10k palette entries, and
//! the time the console spends afterwards (when no key is waiting) to make the order exact.
//! `cargo run --release -p echopilot-ui --example palette_timing`
#[path = "../tests/common/palette_corpus.rs"]
mod palette_corpus;
use echopilot_ui::popups::palette::Filter;
use std::time::Instant;

fn main() {
    let entries = palette_corpus::queue_items(10_000);
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
