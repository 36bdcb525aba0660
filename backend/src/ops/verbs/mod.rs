//! Verbs the ops area wires itself: its own (`tail_logs`) and those that drive other
//! areas' service APIs (queue, self-heal, scheduler). An area may also register verbs from its own
//! start function; either way a verb is registered only when its area is running.

pub mod jobs;
pub mod queue;
pub mod selfheal;
pub mod tail_logs;
