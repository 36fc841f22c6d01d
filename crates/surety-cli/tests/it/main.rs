//! Integration tests against real servers: the HTTP API (with a compliance module per spec),
//! and the `surety` binary end to end.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod api;
mod cli;
mod compliance;
mod support;
