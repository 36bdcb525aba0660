//! Verbs the ops area provides itself. Other areas implement [`super::Verb`] in their own
//! modules and register at start.

pub mod tail_logs;
