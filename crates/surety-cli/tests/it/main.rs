//! Integration tests against real servers: the HTTP API (with a compliance module per spec),
//! the `surety` binary end to end, and third-party OAuth clients end to end.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

pub(crate) mod api;
mod cli;
mod compliance;
pub(crate) mod e2e;
mod examples;
mod support;
