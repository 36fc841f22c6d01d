//! Decision endpoints: Surety's native `POST /v1/decisions` and the OpenID AuthZEN
//! Authorization API 1.0 (`POST /access/v1/evaluation`, `/access/v1/evaluations`).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// A resource an action is taken on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceRef {
    /// Its entity type (`Resource`, or one declared in the catalog).
    #[serde(rename = "type")]
    pub kind: String,
    /// Its id.
    pub id: String,
}

/// `POST /v1/decisions`: may the agent holding `token` take `action` on `resource` now?
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionInput {
    /// The agent's access token, as presented to the resource server. The agent, its
    /// principal, chain, grant and scope are taken from it — never from the request.
    pub token: String,
    /// The action (a tool name from the catalog, e.g. `payments.transfer`).
    pub action: String,
    /// The resource.
    pub resource: ResourceRef,
    /// The action's arguments (`amount`, `currency`, `destination_domain`, `data_class`…).
    #[serde(default)]
    pub arguments: Value,
    /// A one-time approval token (from the CIBA grant) for exactly this action: evidence
    /// that the human approved it. It is consumed by this decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_token: Option<String>,
    /// The `auth_req_id` of a request this resource server made on the agent's behalf
    /// (`request_approval`), once approved: consumed like an approval token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_req_id: Option<String>,
    /// On a step-up, open the approval request on the agent's behalf and return its
    /// `auth_req_id`, so that the caller can hold the call while the human decides.
    #[serde(default)]
    pub request_approval: bool,
}

/// What approval a step-up decision needs: a CIBA request for exactly this action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StepUp {
    /// RFC 9396 `authorization_details` describing the action to approve.
    pub authorization_details: Value,
    /// A short text to show the approver.
    pub binding_message: String,
    /// With `request_approval`: the request opened on the agent's behalf.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_req_id: Option<String>,
    /// With `request_approval`: seconds until that request expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
    /// With `request_approval`, when a request was passed in `auth_req_id`: its state
    /// (`pending`, `denied`, `expired`…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_status: Option<String>,
}

/// A native decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DecisionView {
    /// `allow`, `deny` or `step_up`.
    pub decision: String,
    /// Why.
    pub reasons: Vec<String>,
    /// The policies that determined it.
    pub policy_ids: Vec<String>,
    /// The id of its audit event.
    pub decision_id: String,
    /// The policy-set version that made it.
    pub policy_version: u64,
    /// For `step_up`: what to approve.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_up: Option<StepUp>,
}

/// AuthZEN subject.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Subject {
    /// `agent`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The agent's id (`agt_…`); it must be the token's agent.
    pub id: String,
    /// `token`: the agent's access token.
    #[serde(default)]
    pub properties: Value,
}

/// AuthZEN action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Action {
    /// The action's name.
    pub name: String,
    /// Ignored.
    #[serde(default)]
    pub properties: Value,
}

/// AuthZEN resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Resource {
    /// Entity type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Id.
    pub id: String,
    /// Ignored.
    #[serde(default)]
    pub properties: Value,
}

/// `POST /access/v1/evaluation`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EvaluationRequest {
    /// Who.
    pub subject: Subject,
    /// What.
    pub action: Action,
    /// On what.
    pub resource: Resource,
    /// `arguments`: the action's arguments.
    #[serde(default)]
    pub context: Value,
}

/// One AuthZEN answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EvaluationResponse {
    /// `true` only for allow; a step-up is `false` with `context.step_up`.
    pub decision: bool,
    /// `id`, `reason_admin` and, for a step-up, `step_up`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Value>,
}

/// One entry of a batch: overrides the batch's defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PartialEvaluation {
    /// Who.
    #[serde(default)]
    pub subject: Option<Subject>,
    /// What.
    #[serde(default)]
    pub action: Option<Action>,
    /// On what.
    #[serde(default)]
    pub resource: Option<Resource>,
    /// Context.
    #[serde(default)]
    pub context: Option<Value>,
}

/// Batch options.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EvaluationsOptions {
    /// `execute_all` (default), `deny_on_first_deny` or `permit_on_first_permit`.
    #[serde(default)]
    pub evaluations_semantic: Option<String>,
}

/// `POST /access/v1/evaluations`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EvaluationsRequest {
    /// Default subject.
    #[serde(default)]
    pub subject: Option<Subject>,
    /// Default action.
    #[serde(default)]
    pub action: Option<Action>,
    /// Default resource.
    #[serde(default)]
    pub resource: Option<Resource>,
    /// Default context.
    #[serde(default)]
    pub context: Option<Value>,
    /// The evaluations; each field overrides the default.
    #[serde(default)]
    pub evaluations: Vec<PartialEvaluation>,
    /// Options.
    #[serde(default)]
    pub options: Option<EvaluationsOptions>,
}

/// The answers, in order (cut short by `deny_on_first_deny` / `permit_on_first_permit`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EvaluationsResponse {
    /// The answers.
    pub evaluations: Vec<EvaluationResponse>,
}
