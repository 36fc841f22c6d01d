//! Approvals: a human's out-of-band consent to *one* action of an agent (step-up).
//!
//! ```text
//! pending ──quorum approves──► approved ──token issued──► redeemed ──used──► consumed
//!    │                            └──used by the asking resource server──────────┘
//!    ├──an approver denies / quorum out of reach──► denied
//!    ├──agent or grant revoked──► cancelled
//!    └──(time)──► expired            (approved, too, expires if never redeemed)
//! ```
//!
//! What an approver sees is the request's *statement* ([`Approval::statement`]): the agent,
//! its chain, the principal, the grant, the exact action with its arguments, the binding
//! message and why policy asked. Its canonical text is what the approval's digest covers,
//! and what every approval signature (passkey assertion or device-key JWS) commits to — so
//! an approval proves what was seen, and cannot be moved to another action.

use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::canonical;
use crate::error::RuleError;
use crate::id::{AgentId, ApprovalId, GrantId, HumanId, ResourceServerId};
use crate::names::named_enum;

/// The RFC 9396 `authorization_details` type of an action to approve.
pub const ACTION_TYPE: &str = "surety_action";
/// Version of the statement encoding; part of every statement.
pub const STATEMENT_VERSION: u64 = 1;
/// Longest binding message, in characters.
pub const MAX_BINDING_MESSAGE: usize = 100;
/// Largest `arguments` object, serialised, in bytes.
pub const MAX_ARGUMENTS_BYTES: usize = 4096;
/// Longest action name, resource type or id, in bytes.
const MAX_NAME: usize = 256;
/// Grant constraint naming the approvers (human ids); the principal when absent.
pub const APPROVERS_CONSTRAINT: &str = "approvers";
/// Grant constraint naming how many approvers must approve (default 1).
pub const REQUIRED_CONSTRAINT: &str = "approvals_required";
/// Most approvers of one request.
pub const MAX_APPROVERS: usize = 10;

named_enum! {
    /// Lifecycle state of an approval request.
    pub enum ApprovalStatus: "status" {
        /// Waiting for its approvers.
        Pending = "pending",
        /// Approved; not yet used.
        Approved = "approved",
        /// Refused by an approver (final).
        Denied = "denied",
        /// Not decided, or not used, in time (final).
        Expired = "expired",
        /// Withdrawn because the agent, the grant or the approvers can no longer stand (final).
        Cancelled = "cancelled",
        /// Exchanged for its one-time approval token.
        Redeemed = "redeemed",
        /// Used by the decision it approved (final).
        Consumed = "consumed",
    }
}

named_enum! {
    /// One approver's answer.
    pub enum Verdict: "decision" {
        /// Yes.
        Approve = "approve",
        /// No.
        Deny = "deny",
    }
}

named_enum! {
    /// How an approver proved presence.
    pub enum ApprovalMethod: "method" {
        /// A WebAuthn assertion with user verification, in the web UI.
        Passkey = "passkey",
        /// A JWS by an enrolled device key (`surety approve`).
        DeviceKey = "device_key",
    }
}

impl ApprovalStatus {
    /// This stored state at `now` for a request ending at `expires_at`.
    #[must_use]
    pub fn at(self, expires_at: OffsetDateTime, now: OffsetDateTime) -> Self {
        match self {
            Self::Pending | Self::Approved if now >= expires_at => Self::Expired,
            s => s,
        }
    }

    /// Whether nothing can change it any more.
    #[must_use]
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Denied | Self::Expired | Self::Cancelled | Self::Consumed
        )
    }
}

/// Why `authorization_details` cannot be approved (RFC 9396 §5:
/// `invalid_authorization_details`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DetailsError(pub String);

/// The one action an approval is for: a `surety_action` entry of `authorization_details`.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionDetails {
    /// The action (tool) name.
    pub action: String,
    /// The resource's entity type.
    pub resource_type: String,
    /// The resource's id.
    pub resource_id: String,
    /// The action's arguments (an object).
    pub arguments: Value,
    /// The resource server (its audience) that will see the approval token.
    pub location: String,
    /// The grant it is asked under: named by the agent's request, or found for it — a
    /// stored request always names its grant.
    pub grant: Option<GrantId>,
}

/// Characters that can make text look other than it is: controls, bidirectional overrides
/// and isolates (which reorder what is displayed), and invisible joiners. Refused anywhere an
/// approver reads.
fn deceptive(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200b}'..='\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{2069}'
                | '\u{feff}'
        )
}

/// Largest magnitude of a number in `arguments`: beyond 2^53 two different amounts can read
/// as one (I-JSON, RFC 7493 §2.2).
const MAX_SAFE_INTEGER: u64 = 1 << 53;

fn safe_number(n: &serde_json::Number) -> bool {
    if let Some(u) = n.as_u64() {
        u <= MAX_SAFE_INTEGER
    } else if let Some(i) = n.as_i64() {
        i.unsigned_abs() <= MAX_SAFE_INTEGER
    } else {
        #[expect(clippy::cast_precision_loss, reason = "2^53 is exact in an f64")]
        let max = MAX_SAFE_INTEGER as f64;
        n.as_f64().is_some_and(|f| f.is_finite() && f.abs() <= max)
    }
}

/// Checks what an approver will read in `arguments`: no deceptive characters in keys or
/// strings, no number two parties could read differently.
fn check_arguments(v: &Value, path: &str) -> Result<(), DetailsError> {
    match v {
        Value::String(s) if s.chars().any(deceptive) => Err(DetailsError(format!(
            "`{path}` contains control, bidirectional or invisible characters"
        ))),
        Value::Number(n) if !safe_number(n) => Err(DetailsError(format!(
            "`{path}` is a number beyond ±2^53: send it as a string"
        ))),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, x)| check_arguments(x, &format!("{path}[{i}]"))),
        Value::Object(members) => members.iter().try_for_each(|(k, x)| {
            if k.chars().any(deceptive) {
                return Err(DetailsError(format!(
                    "`{path}` has a member name with control, bidirectional or invisible characters"
                )));
            }
            check_arguments(x, &format!("{path}.{k}"))
        }),
        _ => Ok(()),
    }
}

fn name<'a>(entry: &'a Value, key: &str, path: &str) -> Result<&'a str, DetailsError> {
    let v = entry
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| DetailsError(format!("`{path}` must be a string")))?;
    if v.is_empty() || v.len() > MAX_NAME || v.chars().any(deceptive) {
        return Err(DetailsError(format!(
            "`{path}` must be 1 to {MAX_NAME} bytes without control, bidirectional or invisible characters"
        )));
    }
    Ok(v)
}

impl ActionDetails {
    /// Parses `authorization_details` (RFC 9396 §2): an array holding exactly one object of
    /// type `surety_action` with `action`, `resource` `{type, id}`, optional `arguments`
    /// (an object), `locations` naming one resource server, optional `actions` (if present,
    /// `[action]`) and optional `grant_id`. Unknown members are refused: what is approved
    /// must be exactly what is shown.
    pub fn parse(details: &Value) -> Result<Self, DetailsError> {
        let entries = details
            .as_array()
            .ok_or_else(|| DetailsError("`authorization_details` must be a JSON array".into()))?;
        let [entry] = entries.as_slice() else {
            return Err(DetailsError(format!(
                "`authorization_details` must hold exactly one `{ACTION_TYPE}` object"
            )));
        };
        let obj = entry.as_object().ok_or_else(|| {
            DetailsError("each `authorization_details` entry must be an object".into())
        })?;
        match obj.get("type").and_then(Value::as_str) {
            Some(ACTION_TYPE) => {}
            Some(other) => {
                return Err(DetailsError(format!(
                    "unknown `authorization_details` type `{}`: only `{ACTION_TYPE}` is supported",
                    other.chars().take(64).collect::<String>()
                )));
            }
            None => {
                return Err(DetailsError(
                    "every `authorization_details` entry needs a `type`".into(),
                ));
            }
        }
        if let Some(unknown) = obj.keys().find(|k| {
            !matches!(
                k.as_str(),
                "type" | "locations" | "actions" | "action" | "resource" | "arguments" | "grant_id"
            )
        }) {
            return Err(DetailsError(format!(
                "`{}` is not a member of `{ACTION_TYPE}`",
                unknown.chars().take(64).collect::<String>()
            )));
        }
        let action = name(entry, "action", "action")?;
        if let Some(actions) = obj.get("actions")
            && actions != &json!([action])
        {
            return Err(DetailsError(
                "`actions`, when present, must be `[action]`".into(),
            ));
        }
        let resource = obj
            .get("resource")
            .filter(|r| r.is_object())
            .ok_or_else(|| DetailsError("`resource` must be an object `{type, id}`".into()))?;
        if resource.as_object().is_some_and(|r| r.len() != 2) {
            return Err(DetailsError(
                "`resource` must have exactly `type` and `id`".into(),
            ));
        }
        let resource_type = name(resource, "type", "resource.type")?;
        let resource_id = name(resource, "id", "resource.id")?;
        let arguments = obj.get("arguments").cloned().unwrap_or_else(|| json!({}));
        if !arguments.is_object() {
            return Err(DetailsError("`arguments` must be an object".into()));
        }
        check_arguments(&arguments, "arguments")?;
        if canonical::to_string(&arguments).len() > MAX_ARGUMENTS_BYTES {
            return Err(DetailsError(format!(
                "`arguments` must be at most {MAX_ARGUMENTS_BYTES} bytes"
            )));
        }
        let location = match obj
            .get("locations")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
        {
            Some([Value::String(l)]) if !l.is_empty() && l.len() <= 512 => l.clone(),
            _ => {
                return Err(DetailsError(
                    "`locations` must name exactly one resource server".into(),
                ));
            }
        };
        let grant = obj
            .get("grant_id")
            .map(|g| {
                g.as_str()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| DetailsError("`grant_id` is not a grant id".into()))
            })
            .transpose()?;
        Ok(Self {
            action: action.to_owned(),
            resource_type: resource_type.to_owned(),
            resource_id: resource_id.to_owned(),
            arguments,
            location,
            grant,
        })
    }

    /// The `authorization_details` for this action, in the form Surety issues them.
    #[must_use]
    pub fn to_authorization_details(&self, grant: GrantId) -> Value {
        json!([{
            "type": ACTION_TYPE,
            "locations": [self.location],
            "actions": [self.action],
            "action": self.action,
            "resource": {"type": self.resource_type, "id": self.resource_id},
            "arguments": self.arguments,
            "grant_id": grant.to_string(),
        }])
    }

    /// Whether a request for `action` on `resource_type`/`resource_id` with `arguments`, at
    /// the resource server `location`, is exactly this action (arguments compared as JSON
    /// values, member order ignored).
    #[must_use]
    pub fn matches(
        &self,
        action: &str,
        resource_type: &str,
        resource_id: &str,
        arguments: &Value,
        location: &str,
    ) -> bool {
        let empty = json!({});
        let arguments = if arguments.is_null() {
            &empty
        } else {
            arguments
        };
        self.action == action
            && self.resource_type == resource_type
            && self.resource_id == resource_id
            && self.location == location
            && canonical::to_string(&self.arguments) == canonical::to_string(arguments)
    }
}

/// Checks a binding message (CIBA §7.1: short, shown on the approver's device).
pub fn check_binding_message(message: &str) -> Result<(), String> {
    if message.trim().is_empty() {
        return Err("`binding_message` must not be empty".into());
    }
    if message.chars().count() > MAX_BINDING_MESSAGE {
        return Err(format!(
            "`binding_message` must be at most {MAX_BINDING_MESSAGE} characters"
        ));
    }
    if message.chars().any(deceptive) {
        return Err(
            "`binding_message` must not contain control, bidirectional or invisible characters"
                .into(),
        );
    }
    Ok(())
}

/// Who must approve requests under a grant of `principal` with `constraints`, and how many
/// of them: the `approvers` and `approvals_required` constraints, or the principal alone.
pub fn quorum(principal: HumanId, constraints: &Value) -> Result<(Vec<HumanId>, u32), RuleError> {
    let invalid = |m: &str| RuleError::Invalid(crate::FieldError::new("constraints", m));
    let approvers = match constraints.get(APPROVERS_CONSTRAINT) {
        None => vec![principal],
        Some(v) => {
            let ids: Vec<&str> = match v {
                Value::String(s) => s.split(',').map(str::trim).collect(),
                Value::Array(a) => a
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .ok_or_else(|| invalid("`approvers` must be human ids"))
                    })
                    .collect::<Result<_, _>>()?,
                _ => return Err(invalid("`approvers` must be human ids")),
            };
            let mut out: Vec<HumanId> = Vec::new();
            for id in ids {
                let h: HumanId = id
                    .parse()
                    .map_err(|_| invalid("`approvers` must be human ids"))?;
                if !out.contains(&h) {
                    out.push(h);
                }
            }
            if out.is_empty() || out.len() > MAX_APPROVERS {
                return Err(invalid("`approvers` must name 1 to 10 humans"));
            }
            out
        }
    };
    let required = match constraints.get(REQUIRED_CONSTRAINT) {
        None => 1,
        Some(v) => v
            .as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| invalid("`approvals_required` must be a positive integer"))?,
    };
    if required == 0 || required as usize > approvers.len() {
        return Err(invalid(
            "`approvals_required` must be between 1 and the number of approvers",
        ));
    }
    Ok((approvers, required))
}

/// How the agent learns the outcome (CIBA §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// The agent polls the token endpoint.
    Poll,
    /// The server calls the agent's registered endpoint with its `client_notification_token`.
    Ping {
        /// The agent's notification endpoint.
        endpoint: String,
        /// The bearer token the agent gave for it.
        token: String,
        /// The request's id, to name it in the ping (CIBA §10.2). Kept for ping-mode
        /// requests only: poll-mode ids are stored as hashes alone.
        auth_req_id: String,
    },
}

/// A request for approval.
#[derive(Debug, Clone, PartialEq)]
pub struct Approval {
    /// `apr_…`
    pub id: ApprovalId,
    /// SHA-256 (base64url) of the opaque `auth_req_id` handed to the agent.
    pub auth_req_hash: String,
    /// The agent that asked (the OAuth client that may redeem it).
    pub client: AgentId,
    /// The delegation chain, acting agent first.
    pub chain: Vec<AgentId>,
    /// Whose authority: the grant's principal.
    pub principal: HumanId,
    /// The grant the action falls under.
    pub grant: GrantId,
    /// The action.
    pub details: ActionDetails,
    /// Shown to the approver.
    pub binding_message: String,
    /// Why policy asked (empty when the agent asked by itself).
    pub reasons: Vec<String>,
    /// Who may approve.
    pub approvers: Vec<HumanId>,
    /// How many must.
    pub required: u32,
    /// Stored state (see [`Approval::status_at`]).
    pub status: ApprovalStatus,
    /// The resource server that asked on the agent's behalf, if one did.
    pub requested_by: Option<ResourceServerId>,
    /// How the outcome is delivered.
    pub delivery: Delivery,
    /// Smallest polling interval, in seconds.
    pub interval: u32,
    /// The last poll.
    pub last_polled_at: Option<OffsetDateTime>,
    /// When asked.
    pub created_at: OffsetDateTime,
    /// When it stops being decidable or usable.
    pub expires_at: OffsetDateTime,
    /// When it reached its current state.
    pub updated_at: OffsetDateTime,
    /// The `jti` of the approval token it was redeemed for.
    pub token_jti: Option<String>,
}

/// One approver's signed answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Vote {
    /// Which request.
    pub approval: ApprovalId,
    /// Who.
    pub approver: HumanId,
    /// Yes or no.
    pub verdict: Verdict,
    /// How presence was proved.
    pub method: ApprovalMethod,
    /// The reason given, if any.
    pub reason: Option<String>,
    /// The signature and everything needed to check it again offline.
    pub evidence: Value,
    /// When.
    pub at: OffsetDateTime,
}

/// Where the votes leave a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tally {
    /// More votes are needed.
    Pending,
    /// The quorum approved.
    Approved,
    /// Too many denied for the quorum to be reached.
    Denied,
}

impl Approval {
    /// The state at `now`.
    #[must_use]
    pub fn status_at(&self, now: OffsetDateTime) -> ApprovalStatus {
        self.status.at(self.expires_at, now)
    }

    /// What the approver sees and signs. Its canonical text ([`Approval::statement_text`])
    /// is what the digest covers.
    #[must_use]
    pub fn statement(&self) -> Value {
        json!({
            "v": STATEMENT_VERSION,
            "id": self.id.to_string(),
            "agent": self.client.to_string(),
            "chain": self.chain.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "principal": self.principal.to_string(),
            "grant_id": self.grant.to_string(),
            "authorization_details": self.details.to_authorization_details(self.grant),
            "binding_message": self.binding_message,
            "reasons": self.reasons,
            "expires_at": self.expires_at.unix_timestamp(),
        })
    }

    /// The canonical text of the statement.
    #[must_use]
    pub fn statement_text(&self) -> String {
        canonical::to_string(&self.statement())
    }

    /// Whether `who` may vote on this request at `now`, given the votes already cast.
    pub fn may_vote(
        &self,
        who: HumanId,
        votes: &[Vote],
        now: OffsetDateTime,
    ) -> Result<(), RuleError> {
        if !self.approvers.contains(&who) {
            return Err(RuleError::Forbidden(format!(
                "`{who}` is not an approver of this request"
            )));
        }
        let status = self.status_at(now);
        if status != ApprovalStatus::Pending {
            return Err(RuleError::Conflict(format!("the request is {status}")));
        }
        if votes.iter().any(|v| v.approver == who) {
            return Err(RuleError::Conflict(format!(
                "`{who}` has already answered this request"
            )));
        }
        Ok(())
    }

    /// Where `votes` leave the request: approved once `required` approvers approved, denied
    /// as soon as that can no longer happen.
    #[must_use]
    pub fn tally(&self, votes: &[Vote]) -> Tally {
        let counts = |verdict| {
            votes
                .iter()
                .filter(|v| v.verdict == verdict && self.approvers.contains(&v.approver))
                .count()
        };
        let approved = counts(Verdict::Approve);
        let denied = counts(Verdict::Deny);
        let required = self.required as usize;
        if approved >= required {
            Tally::Approved
        } else if self.approvers.len().saturating_sub(denied) < required {
            Tally::Denied
        } else {
            Tally::Pending
        }
    }
}

#[cfg(test)]
mod tests;
