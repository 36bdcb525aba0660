//! EchoPilot OS backend: HTTP API, store (SQLite / PostgreSQL), auth and tenancy,
//! the verifiable audit log, logs and metrics. Every capability is an [`area::Area`]
//! listed once in [`areas::ALL`]; the router, config, logs, status summary, telemetry
//! and health endpoints are derived from that list.

pub mod ai;
pub mod alerts;
pub mod analytics;
pub mod api;
pub mod app;
pub mod area;
pub mod areas;
pub mod audit;
pub mod auth;
pub mod compliance;
pub mod config;
pub mod dr;
pub mod error;
pub mod jobs;
pub mod logging;
pub mod marketplace;
pub mod model;
pub mod ops;
pub mod queue;
pub mod security;
pub mod selfheal;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod util;

pub use app::AppState;
pub use config::Config;
pub use error::ApiError;
pub use store::Store;
