//! The Surety server: the OAuth token endpoint, the admin API, health and metrics, on
//! axum. Handlers parse, call the rules in `surety-core`, and apply decisions through
//! `surety-store`; nothing here decides policy on its own.

pub mod admin;
pub mod app;
mod approvals;
mod auth;
mod batch;
pub mod bootstrap;
pub mod config;
mod csv;
mod decisions;
mod egress;
pub mod embed;
mod error;
mod extract;
mod federation;
mod inventory;
pub mod keyring;
mod nonce;
mod oauth;
mod ops;
pub mod serve;
mod signals;
pub mod telemetry;
mod ui;

pub use app::{AppState, openapi, router};
pub use config::Config;
pub use error::ApiError;
