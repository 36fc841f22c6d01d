//! Asking Surety about a message's evaluations, step-up (refuse naming the approval, or hold
//! the call while the human decides), and the audit line of every message.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use surety_api::decisions::{DecisionInput, DecisionView, ResourceRef};
use surety_jose::rfc9068::AccessTokenClaims;

use crate::config::StepUpMode;
use crate::jsonrpc::{self, Message};
use crate::mapping::Evaluation;
use crate::server::{Gateway, Route};

/// Methods named as such in metrics.
const KNOWN_METHODS: [&str; 18] = [
    "initialize",
    "ping",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/read",
    "resources/templates/list",
    "resources/subscribe",
    "resources/unsubscribe",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
    "tasks/get",
    "tasks/list",
    "tasks/result",
    "tasks/cancel",
    "response",
];

/// `_meta` key of a one-time approval token the agent obtained itself (CIBA).
pub const META_APPROVAL_TOKEN: &str = "surety/approval_token";
/// `_meta` key of an approval request the gateway opened on the agent's behalf.
pub const META_AUTH_REQ_ID: &str = "surety/auth_req_id";
/// How often a held call asks again (each ask is a decision in Surety's audit log).
const HOLD_POLL: Duration = Duration::from_secs(2);

/// What to do with the message.
#[derive(Debug)]
pub enum Verdict {
    /// Forward it.
    Allow {
        /// The approval it used, if any.
        approved: Option<Value>,
    },
    /// Answer with this JSON-RPC error.
    Refuse {
        /// The code.
        code: i64,
        /// The message.
        message: String,
        /// What to approve, for a step-up.
        data: Option<Value>,
        /// For the audit line and metrics.
        outcome: &'static str,
    },
}

fn refuse(
    code: i64,
    message: impl Into<String>,
    data: Option<Value>,
    outcome: &'static str,
) -> Verdict {
    Verdict::Refuse {
        code,
        message: message.into(),
        data,
        outcome,
    }
}

/// Surety's action for an evaluation: the tool's name for the default `tools/call` mapping
/// (Surety's grants and policies name tools), the mapping's action otherwise.
pub fn surety_action(e: &Evaluation) -> String {
    if e.action == "tools/call" && e.resource_type == "tool" {
        e.resource_id.clone()
    } else {
        e.action.clone()
    }
}

/// Surety's resource type for a COAZ one: the binding's generic types (`tool`, `resource`,
/// `prompt`, `task`, `mcp_server`) are Surety's `Resource`; a declared mapping may name a
/// type of the policy catalog.
pub fn surety_resource_type(coaz: &str) -> String {
    match coaz {
        "tool" | "resource" | "prompt" | "task" | "mcp_server" => "Resource".to_owned(),
        other => other.to_owned(),
    }
}

/// The action a listed tool would be decided on, to show it only to agents whose scope names
/// it: a declared mapping's literal `action.name`, else the tool's name.
pub fn listed_action(tool: &str, mapping: Option<&Value>) -> Option<String> {
    let literal = mapping
        .and_then(|m| {
            m.pointer("/evaluation/action/name")
                .or_else(|| m.pointer("/evaluations/action/name"))
        })
        .and_then(Value::as_str)
        .filter(|a| !a.starts_with('$'));
    Some(literal.unwrap_or(tool).to_owned())
}

fn meta(message: &Message, key: &str) -> Option<String> {
    message
        .params
        .get("_meta")?
        .get(key)?
        .as_str()
        .map(str::to_owned)
}

/// The message without Surety's `_meta` entries, if it had any (they are for Surety, never
/// for the upstream).
pub fn without_approval(message: &Message) -> Option<Value> {
    let meta = message.params.get("_meta")?.as_object()?;
    if !meta.contains_key(META_APPROVAL_TOKEN) && !meta.contains_key(META_AUTH_REQ_ID) {
        return None;
    }
    let mut raw = message.raw.clone();
    if let Some(m) = raw
        .pointer_mut("/params/_meta")
        .and_then(Value::as_object_mut)
    {
        m.remove(META_APPROVAL_TOKEN);
        m.remove(META_AUTH_REQ_ID);
        if m.is_empty()
            && let Some(p) = raw.pointer_mut("/params").and_then(Value::as_object_mut)
        {
            p.remove("_meta");
        }
    }
    Some(raw)
}

async fn ask(route: &Route, input: &DecisionInput) -> Result<DecisionView, Verdict> {
    let started = Instant::now();
    let view = route.decider.decide(input).await.map_err(|e| match &e {
        // Surety refused the question itself (arguments too large, too many requests
        // waiting for approval…): the call is refused, with Surety's reason.
        surety_sdk::ClientError::Api {
            status: 400..=499,
            body,
        } => refuse(
            jsonrpc::FORBIDDEN,
            format!(
                "Access denied: {}",
                body.error_description.as_deref().unwrap_or(&body.error)
            ),
            None,
            "refused_by_pdp",
        ),
        _ => {
            tracing::warn!(error = %e, "the decision could not be made");
            refuse(
                jsonrpc::INTERNAL_ERROR,
                "Authorization service unavailable",
                None,
                "pdp_error",
            )
        }
    })?;
    metrics::histogram!("surety_gateway_decision_seconds").record(started.elapsed().as_secs_f64());
    Ok(view)
}

fn step_up_data(view: &DecisionView) -> Option<Value> {
    view.step_up.as_ref().map(|s| {
        json!({
            "auth_req_id": s.auth_req_id,
            "expires_in": s.expires_in,
            "authorization_details": s.authorization_details,
            "binding_message": s.binding_message,
            "approval_status": s.approval_status,
        })
    })
}

/// Decides every evaluation of `message` in order; the message passes only if each allows.
pub async fn decide(
    gw: &Gateway,
    route: &Route,
    token: &str,
    message: &Message,
    evaluations: &[Evaluation],
) -> Verdict {
    let arguments = match message.params.get("arguments") {
        Some(a @ Value::Object(_)) => a.clone(),
        _ => json!({}),
    };
    let approval_token = meta(message, META_APPROVAL_TOKEN);
    let auth_req_id = meta(message, META_AUTH_REQ_ID);
    let mut approved = None;
    for e in evaluations {
        let mut input = DecisionInput {
            token: token.to_owned(),
            action: surety_action(e),
            resource: ResourceRef {
                kind: surety_resource_type(&e.resource_type),
                id: e.resource_id.clone(),
            },
            arguments: arguments.clone(),
            approval_token: approval_token.clone(),
            auth_req_id: auth_req_id.clone(),
            request_approval: false,
        };
        let mut view = match ask(route, &input).await {
            Ok(v) => v,
            Err(v) => return v,
        };
        if view.decision == "step_up" && approval_token.is_none() && auth_req_id.is_none() {
            // Open the approval request on the agent's behalf, then refuse naming it or
            // hold the call.
            input.request_approval = true;
            view = match ask(route, &input).await {
                Ok(v) => v,
                Err(v) => return v,
            };
            if gw.config.step_up == StepUpMode::Hold
                && let Some(id) = view.step_up.as_ref().and_then(|s| s.auth_req_id.clone())
            {
                input.request_approval = false;
                input.auth_req_id = Some(id);
                let deadline = Instant::now() + gw.config.hold_timeout;
                while view.decision == "step_up" && Instant::now() + HOLD_POLL <= deadline {
                    tokio::time::sleep(HOLD_POLL).await;
                    view = match ask(route, &input).await {
                        Ok(v) => v,
                        Err(v) => return v,
                    };
                }
            }
        }
        match view.decision.as_str() {
            "allow" => {
                if approval_token.is_some() || input.auth_req_id.is_some() {
                    // The decision that used the approval names it in Surety's log; the
                    // request id itself is a bearer value and stays out of logs.
                    approved = Some(json!({"decision_id": view.decision_id}));
                }
            }
            "step_up" => {
                let pending = view
                    .step_up
                    .as_ref()
                    .and_then(|s| s.approval_status.as_deref())
                    == Some("pending");
                let text = if pending {
                    "Waiting for a human's approval: call again with `_meta.surety/auth_req_id` once approved"
                } else {
                    "This call needs a human's approval: call again with `_meta.surety/auth_req_id`"
                };
                return refuse(
                    jsonrpc::APPROVAL_REQUIRED,
                    text,
                    step_up_data(&view),
                    "step_up",
                );
            }
            // Deny, and anything else: fail closed. The message does not say whether the
            // tool exists.
            _ => return refuse(jsonrpc::FORBIDDEN, "Access denied", None, "deny"),
        }
    }
    Verdict::Allow { approved }
}

/// One audit line per message: who (agent, principal, chain), what (method, tool, a digest
/// of the arguments — never the arguments), the outcome and approval, the upstream's status
/// and the time taken.
pub fn audit(
    claims: &AccessTokenClaims,
    message: &Message,
    outcome: &'static str,
    approval: Option<&Value>,
    upstream_status: Option<u16>,
    started: Instant,
) {
    let arguments = message.params.get("arguments").map(|a| {
        let digest = Sha256::digest(surety_core::canonical::to_string(a).as_bytes());
        digest
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    });
    let chain = serde_json::to_string(&claims.act).unwrap_or_default();
    let method = message.method.as_deref().unwrap_or("response");
    let tool = message.params["name"].as_str().unwrap_or("");
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    // Metric labels only from bounded sets: a method MCP defines, a tool the policy let
    // through. (The audit line keeps what was asked.)
    let method_label = if KNOWN_METHODS.contains(&method) {
        method.to_owned()
    } else if method.starts_with("notifications/") {
        "notifications".to_owned()
    } else {
        "other".to_owned()
    };
    let tool_label = if outcome == "allow" {
        tool.to_owned()
    } else {
        String::new()
    };
    metrics::counter!("surety_gateway_messages_total", "method" => method_label.clone(), "tool" => tool_label.clone(), "outcome" => outcome).increment(1);
    metrics::histogram!("surety_gateway_message_seconds", "method" => method_label, "tool" => tool_label).record(latency_ms / 1000.0);
    tracing::info!(
        target: "surety_gateway::audit",
        agent = %claims.client_id,
        principal = %claims.sub,
        chain = %chain,
        grant = %claims.grant_id,
        token = %claims.jti,
        method,
        tool,
        arguments_sha256 = arguments.as_deref().unwrap_or(""),
        outcome,
        approval = %approval.map(|v| v.to_string()).unwrap_or_default(),
        upstream_status = upstream_status.unwrap_or(0),
        latency_ms,
        "mcp message"
    );
}
