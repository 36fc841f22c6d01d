//! Step-up approvals as approvers see them (`/v1/approvals`), the device-key answer the
//! `surety approve` CLI signs, passkey invites and agents' CIBA notification endpoints.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

/// The JOSE `typ` of a device-key answer to an approval request.
pub const ANSWER_TYP: &str = "surety-approval+jwt";
/// The JOSE `typ` of an approval webhook notification.
pub const WEBHOOK_TYP: &str = "surety-approval-notice+jwt";
/// The JOSE `typ` of the webhook notification telling an agent's owner that Surety
/// suspended the agent.
pub const AGENT_NOTICE_TYP: &str = "surety-agent-notice+jwt";

/// One approver's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VoteView {
    /// Who (`hum_…`).
    pub approver: String,
    /// `approve` or `deny`.
    pub decision: String,
    /// `passkey` or `device_key`.
    pub method: String,
    /// The reason given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// An approval request: everything the approver must see before answering.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApprovalView {
    /// `apr_…`
    pub id: String,
    /// `pending`, `approved`, `denied`, `expired`, `cancelled`, `redeemed` or `consumed`.
    pub status: String,
    /// The agent asking (`agt_…`).
    pub agent: String,
    /// Its name.
    pub agent_name: String,
    /// The delegation chain, acting agent first.
    pub chain: Vec<String>,
    /// Whose authority (`hum_…`).
    pub principal: String,
    /// The grant the action falls under.
    pub grant_id: String,
    /// The action, exactly (RFC 9396 `authorization_details`, type `surety_action`).
    pub authorization_details: Value,
    /// The action's name.
    pub action: String,
    /// The resource (`{type, id}`).
    pub resource: Value,
    /// The action's arguments.
    pub arguments: Value,
    /// The resource server that will see the approval.
    pub location: String,
    /// The agent's message to the approver.
    pub binding_message: String,
    /// Why policy asked for approval.
    pub reasons: Vec<String>,
    /// Who may approve.
    pub approvers: Vec<String>,
    /// How many must.
    pub required: u32,
    /// The answers so far.
    pub votes: Vec<VoteView>,
    /// When asked.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it expires.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// The statement an answer signs (canonical JSON of what is shown here).
    pub statement: Value,
    /// SHA-256 of the statement's canonical text, base64url: what every answer commits to.
    pub digest: String,
}

/// A page of approval requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApprovalList {
    /// Newest first.
    pub items: Vec<ApprovalView>,
    /// Pass as `cursor` for the next page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Which approval requests to list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ApprovalQuery {
    /// Only in this stored state (`pending` by default; `all` for every state).
    pub status: Option<String>,
    /// Page size, 1–1000 (default 50).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The claims of a device-key answer: a JWS (`typ: surety-approval+jwt`) signed by one of
/// the approver's active device keys, committing to the statement's digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerClaims {
    /// The approver (`hum_…`).
    pub iss: String,
    /// The request (`apr_…`).
    pub approval_id: String,
    /// The digest of the statement the approver was shown.
    pub digest: String,
    /// `approve` or `deny`.
    pub decision: String,
    /// The reason, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When signed (seconds).
    pub iat: i64,
}

/// `POST /v1/approvals/{id}/answer`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    /// The compact JWS of [`AnswerClaims`].
    pub answer: String,
}

/// A one-time passkey enrollment link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InviteView {
    /// Open it in a browser to register a passkey (the code is in the fragment, never sent
    /// to the server in a URL).
    pub url: String,
    /// When it stops working.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// A registered passkey.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PasskeyView {
    /// Its credential id, base64url.
    pub credential_id: String,
    /// Its public key (COSE, as webauthn-rs serialises it): what checks its assertions,
    /// offline too.
    pub public_key: Value,
    /// When registered.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last sign-in or answer with it.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
}

/// An agent's CIBA ping endpoint (`PUT /v1/agents/{id}/notification-endpoint`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NotificationEndpoint {
    /// Where the server POSTs `{"auth_req_id"}` when a request of the agent is decided
    /// (https unless the server runs in `dev` mode); `null` to go back to polling.
    pub url: Option<String>,
}
