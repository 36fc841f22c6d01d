//! Why a domain rule refused something. Each variant maps to one HTTP status at the edge.

use std::fmt;

/// A refused request, as decided by a domain rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// An input field is malformed (HTTP 400).
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// The lifecycle does not allow this transition from the current state (HTTP 409).
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// The caller is authenticated but not allowed to do this (HTTP 403).
    #[error("{0}")]
    Forbidden(String),
    /// The request conflicts with the current state of something else (HTTP 409).
    #[error("{0}")]
    Conflict(String),
}

/// A malformed input field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{field}`: {reason}")]
pub struct FieldError {
    /// Name of the field, as it appears on the wire (`public_key.x`, `email`).
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

impl FieldError {
    /// A new error for `field`.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// A lifecycle transition that is not allowed from the current state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot {action} {entity} `{id}`: it is {current}")]
pub struct TransitionError {
    /// Kind of thing (`agent`, `human`, `key`).
    pub entity: &'static str,
    /// Its id.
    pub id: String,
    /// The attempted action (`reinstate`, `revoke`…).
    pub action: &'static str,
    /// The current state, unchanged.
    pub current: String,
}

impl TransitionError {
    pub(crate) fn new(
        entity: &'static str,
        id: impl fmt::Display,
        action: &'static str,
        current: impl fmt::Display,
    ) -> Self {
        Self {
            entity,
            id: id.to_string(),
            action,
            current: current.to_string(),
        }
    }
}
