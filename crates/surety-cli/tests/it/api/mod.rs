//! The admin API against a real server: what each rule allows and what it refuses, and
//! that a refused request changes nothing.

mod agents;
mod approval_notices;
pub(crate) mod approvals;
mod audit_log;
mod decisions;
mod enroll;
mod grants;
mod humans;
pub(crate) mod inventory;
mod nodes;
mod ops;
mod policies;
mod sdk;
mod ui;
