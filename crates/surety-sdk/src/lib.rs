//! The client side of Surety: private key files, CLI profiles, an admin API client that
//! authenticates with an enrolled device key (an RFC 7523 assertion traded for a short-lived
//! DPoP-bound token, a fresh DPoP proof on every call), an agent client that exchanges
//! grants for tokens, and a verifier for resource servers. Nothing holds a shared secret.

pub mod agent;
mod client;
mod error;
pub mod keyfile;
pub mod profile;
pub mod verifier;

pub use agent::{AgentClient, ApprovalAsk, TokenRequest};
pub use client::{AdminClient, InventoryExport, enroll};
pub use error::ClientError;
pub use profile::Profile;
pub use verifier::{ResourceVerifier, VerifyError};
