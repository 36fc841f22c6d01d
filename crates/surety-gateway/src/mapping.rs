//! From an MCP message to access evaluations, following the OpenID AuthZEN COAZ binding for
//! MCP (draft 1): a default mapping per method (§7), a tool's declared `x-authzen-mapping`
//! (§6, §8), `$`-prefixed CEL over `params` and `token` (§4), and the subject anchored to the
//! verified token (§8, §9 step 5, §11.3).
//!
//! Everything here is pure: the verified claims and the message come in, evaluations or a
//! reason to refuse come out. No evaluation is made for a message whose mapping fails.

use std::sync::Arc;

use serde_json::{Map, Value, json};

/// What to do with a message.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Forward without asking (§7.8: `ping`, notifications, responses to the server).
    PassThrough,
    /// Forward, then show only what the agent may use (lists: authorized by the token's
    /// audience, filtered per item).
    List,
    /// Ask for each evaluation; forward only if every one allows.
    Decide(Vec<Evaluation>),
    /// Refuse without asking (§7.9: a method this gateway does not know).
    Deny(String),
}

/// One access evaluation (AuthZEN §6.1), resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// `subject` (anchored: its `id` is the token's subject).
    pub subject: Value,
    /// `action.name`.
    pub action: String,
    /// `resource.type`.
    pub resource_type: String,
    /// `resource.id`.
    pub resource_id: String,
    /// `context`, if any.
    pub context: Option<Value>,
}

/// Why a mapping could not be applied: JSON-RPC `-32602` (§10.1), no PDP call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("COAZ mapping error: {0}")]
pub struct MappingError(pub String);

fn err(why: impl Into<String>) -> MappingError {
    MappingError(why.into())
}

/// The CEL environment: the standard library with optional values (`a.?b`).
fn env() -> Arc<cel::Env> {
    static ENV: std::sync::OnceLock<Arc<cel::Env>> = std::sync::OnceLock::new();
    ENV.get_or_init(|| Arc::new(cel::Env::stdlib())).clone()
}

/// A resolved leaf: a value, or absent (an optional selection that found nothing).
enum Leaf {
    Value(Value),
    Absent,
}

fn to_json(v: &cel::Value) -> Result<Leaf, String> {
    if let Ok(opt) = <&cel::objects::OptionalValue>::try_from(v) {
        return match opt.value() {
            Some(inner) => to_json(inner),
            None => Ok(Leaf::Absent),
        };
    }
    v.json()
        .map(Leaf::Value)
        .map_err(|e| format!("yields a value that is not JSON ({e:?})"))
}

/// Evaluates one `$` expression over `params` and `token`.
fn eval(expr: &str, params: &Value, token: &Value) -> Result<Leaf, MappingError> {
    let env = env();
    let program = env
        .compile(expr)
        .map_err(|e| err(format!("expression '${expr}' does not parse: {e}")))?;
    let mut ctx = cel::Context::with_env(env);
    ctx.add_variable("params", params.clone())
        .map_err(|e| err(format!("params: {e}")))?;
    ctx.add_variable("token", token.clone())
        .map_err(|e| err(format!("token: {e}")))?;
    let v = program
        .execute(&ctx)
        .map_err(|e| err(format!("expression '${expr}' failed: {e}")))?;
    to_json(&v).map_err(|why| err(format!("expression '${expr}' {why}")))
}

/// §4: a string starting with `$` is CEL (`$$` is a literal `$`); every other value is a
/// literal. Objects and arrays are resolved leaf by leaf.
fn resolve(template: &Value, params: &Value, token: &Value) -> Result<Leaf, MappingError> {
    match template {
        Value::String(s) => match s.strip_prefix('$') {
            Some(rest) if rest.starts_with('$') => Ok(Leaf::Value(Value::String(rest.to_owned()))),
            Some(expr) => eval(expr, params, token),
            None => Ok(Leaf::Value(template.clone())),
        },
        Value::Object(fields) => {
            let mut out = Map::new();
            for (k, v) in fields {
                if let Leaf::Value(v) = resolve(v, params, token)? {
                    out.insert(k.clone(), v);
                }
            }
            Ok(Leaf::Value(Value::Object(out)))
        }
        Value::Array(items) => {
            let mut out = Vec::new();
            for v in items {
                if let Leaf::Value(v) = resolve(v, params, token)? {
                    out.push(v);
                }
            }
            Ok(Leaf::Value(Value::Array(out)))
        }
        other => Ok(Leaf::Value(other.clone())),
    }
}

fn required_string(obj: &Value, path: &[&str]) -> Result<String, MappingError> {
    let mut v = obj;
    for p in path {
        v = &v[*p];
    }
    match v {
        Value::String(s) if !s.is_empty() => Ok(s.clone()),
        Value::Null => Err(err(format!("`{}` is missing", path.join(".")))),
        other => Err(err(format!(
            "`{}` must be a non-empty string, not {other}",
            path.join(".")
        ))),
    }
}

/// The verified identities a mapping must agree with.
#[derive(Debug, Clone)]
pub struct Anchor<'a> {
    /// The token's subject (`sub`: the human).
    pub subject: &'a str,
    /// The token's agent (`client_id`).
    pub agent: &'a str,
}

/// Resolves one evaluation template (already merged with the envelope's defaults) and
/// checks its identities against the token.
fn evaluation(
    template: &Value,
    params: &Value,
    token: &Value,
    anchor: &Anchor<'_>,
) -> Result<Evaluation, MappingError> {
    let Leaf::Value(mut v) = resolve(template, params, token)? else {
        return Err(err("the evaluation resolved to nothing"));
    };
    // §8: a missing subject is the token's; a missing type is `identity`.
    if v.get("subject").is_none_or(Value::is_null) {
        v["subject"] = json!({"type": "identity", "id": anchor.subject});
    }
    if v["subject"].get("type").is_none() {
        v["subject"]["type"] = json!("identity");
    }
    let subject = required_string(&v, &["subject", "id"])?;
    // §9 step 5, §11.3: the subject is the token's, whatever the mapping or the arguments
    // say. (Stricter than the binding's SHOULD, as the profile requires.)
    if subject != anchor.subject {
        return Err(err(format!(
            "the mapping names subject `{subject}`, but the token's is `{}`",
            anchor.subject
        )));
    }
    // The agent, when the mapping names one, is the token's too.
    if let Some(agent) = v.get("context").and_then(|c| c.get("agent"))
        && agent.as_str() != Some(anchor.agent)
    {
        return Err(err(format!(
            "the mapping names agent {agent}, but the token's is `{}`",
            anchor.agent
        )));
    }
    Ok(Evaluation {
        action: required_string(&v, &["action", "name"])?,
        resource_type: required_string(&v, &["resource", "type"])?,
        resource_id: required_string(&v, &["resource", "id"])?,
        context: v.get("context").cloned(),
        subject: v["subject"].clone(),
    })
}

/// Applies a mapping envelope (§5: exactly one of `evaluation`, `evaluations`).
pub fn apply(
    mapping: &Value,
    params: &Value,
    token: &Value,
    anchor: &Anchor<'_>,
) -> Result<Vec<Evaluation>, MappingError> {
    let obj = mapping
        .as_object()
        .ok_or_else(|| err("`x-authzen-mapping` must be an object"))?;
    if obj.len() != 1 {
        return Err(err(
            "`x-authzen-mapping` must have exactly one key: `evaluation` or `evaluations`",
        ));
    }
    if let Some(one) = obj.get("evaluation") {
        return Ok(vec![evaluation(one, params, token, anchor)?]);
    }
    let Some(batch) = obj.get("evaluations") else {
        return Err(err(
            "`x-authzen-mapping` must have `evaluation` or `evaluations`",
        ));
    };
    let entries = batch
        .get("evaluations")
        .and_then(Value::as_array)
        .filter(|e| !e.is_empty())
        .ok_or_else(|| err("`evaluations.evaluations` must be a non-empty array"))?;
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries {
        let entry = entry
            .as_object()
            .ok_or_else(|| err("each of `evaluations` must be an object"))?;
        // §8: no identity smuggling through an entry.
        if entry.contains_key("subject") {
            return Err(err("an entry of `evaluations` must not name a `subject`"));
        }
        // AuthZEN §7.1: top-level fields are defaults, each entry overrides them.
        let mut merged = batch.clone();
        if let Some(m) = merged.as_object_mut() {
            m.remove("evaluations");
            for (k, v) in entry {
                m.insert(k.clone(), v.clone());
            }
        }
        out.push(evaluation(&merged, params, token, anchor)?);
    }
    Ok(out)
}

/// The default mapping of a method (§7), as a template.
fn default_mapping(method: &str) -> Option<Value> {
    let on = |action: &str, rtype: &str, rid: &str| {
        json!({"evaluation": {
            "subject": {"type": "identity", "id": "$token.sub"},
            "context": {"agent": "$token.?client_id"},
            "action": {"name": action},
            "resource": {"type": rtype, "id": rid},
        }})
    };
    Some(match method {
        "tools/call" => on("tools/call", "tool", "$params.name"),
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => {
            on(method, "resource", "$params.uri")
        }
        "prompts/get" => on(method, "prompt", "$params.name"),
        "completion/complete" => on(
            method,
            "$params.ref.type == 'ref/prompt' ? 'prompt' : 'resource'",
            "$params.ref.type == 'ref/prompt' ? params.ref.name : params.ref.uri",
        ),
        "logging/setLevel" => on(method, "mcp_server", "$token.aud"),
        "tasks/get" | "tasks/result" | "tasks/cancel" => on(method, "task", "$params.taskId"),
        _ => return None,
    })
}

/// What to do with a client message: `declared` is the tool's `x-authzen-mapping`, when the
/// message is a `tools/call` of a tool that declares one (or the gateway's configuration
/// does).
pub fn plan(
    method: Option<&str>,
    params: &Value,
    token: &Value,
    anchor: &Anchor<'_>,
    declared: Option<&Value>,
) -> Result<Plan, MappingError> {
    let Some(method) = method else {
        // A response to a request the server made (sampling, elicitation): §7.10 leaves it
        // out of scope; it carries nothing the upstream did not ask for.
        return Ok(Plan::PassThrough);
    };
    if method == "ping" || method.starts_with("notifications/") {
        return Ok(Plan::PassThrough);
    }
    if matches!(
        method,
        "initialize"
            | "tools/list"
            | "resources/list"
            | "resources/templates/list"
            | "prompts/list"
            | "tasks/list"
    ) {
        return Ok(Plan::List);
    }
    if method == "tools/call" {
        if !params["name"].is_string() {
            return Err(err("`params.name` must be the tool's name"));
        }
        // What is decided is what is forwarded: arguments are an object, or absent.
        if params.get("arguments").is_some_and(|a| !a.is_object()) {
            return Err(err("`params.arguments` must be an object"));
        }
        if let Some(mapping) = declared {
            return apply(mapping, params, token, anchor).map(Plan::Decide);
        }
    }
    match default_mapping(method) {
        Some(mapping) => apply(&mapping, params, token, anchor).map(Plan::Decide),
        None => Ok(Plan::Deny(format!(
            "the method `{method}` is not allowed through this gateway"
        ))),
    }
}

#[cfg(test)]
mod tests;
