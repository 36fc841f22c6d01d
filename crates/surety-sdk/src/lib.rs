//! The client side of Surety: private key files, CLI profiles, and an admin API client that
//! authenticates with an enrolled device key — an RFC 7523 assertion traded for a short-lived
//! DPoP-bound token, a fresh DPoP proof on every call — and never holds a shared secret.

mod client;
mod error;
pub mod keyfile;
pub mod profile;

pub use client::{AdminClient, enroll};
pub use error::ClientError;
pub use profile::Profile;
