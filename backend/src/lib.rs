//! EchoPilot OS backend: HTTP API, store (SQLite / PostgreSQL), auth and tenancy,
//! the verifiable audit log, logs and metrics. Areas live in their own modules and
//! plug their routes into [`api::router`] and their counters into the status summary.

pub mod api;
pub mod app;
pub mod audit;
pub mod auth;
pub mod config;
pub mod error;
pub mod jobs;
pub mod logging;
pub mod model;
pub mod queue;
pub mod selfheal;
pub mod server;
pub mod store;
pub mod util;

pub use app::AppState;
pub use config::Config;
pub use error::ApiError;
pub use store::Store;
