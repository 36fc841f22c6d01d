//! Wire types of every Surety HTTP surface, shared by the server (which derives its OpenAPI
//! document from them), the SDK and the CLI. Field names follow the specs exactly where a
//! spec defines them.

pub mod admin;
pub mod approvals;
pub mod credentials;
pub mod decisions;
pub mod error;
pub mod federation;
pub mod inventory;
pub mod oauth;
mod schema;
pub mod signals;

pub use error::ErrorBody;
