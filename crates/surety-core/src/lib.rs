//! Surety's domain: identifiers, humans, agents, keys, lifecycles, access rules and audit
//! events. Pure rules only — no I/O, and time arrives through [`clock::Clock`].

pub mod access;
pub mod agent;
pub mod approval;
pub mod audit;
pub mod canonical;
pub mod clock;
pub mod delegation;
pub mod error;
pub mod federation;
pub mod grant;
pub mod human;
pub mod id;
pub mod inventory;
pub mod key;
pub mod merkle;
mod names;
pub mod page;
pub mod scope;
pub mod signals;
pub mod validate;

pub use error::{FieldError, RuleError, TransitionError};
