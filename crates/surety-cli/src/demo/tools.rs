//! The demo's MCP server: four tools of an imaginary company over Streamable HTTP (JSON
//! answers). It knows nothing of Surety — it trusts whoever reaches it, as MCP servers
//! behind a gateway do — and keeps a record of every call it executed, so the demo can check
//! that only what Surety allowed ever reached it.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

/// The tools: name, description, and the arguments each takes.
const TOOLS: [(&str, &str, &[&str]); 4] = [
    (
        "crm.read_customer",
        "Read a customer record",
        &["customer_id"],
    ),
    (
        "payments.transfer",
        "Transfer money from the company account",
        &["amount", "currency", "to"],
    ),
    (
        "iam.grant_role",
        "Grant a role to a user",
        &["user", "role"],
    ),
    (
        "files.share_external",
        "Share a file with someone outside the company",
        &["path", "destination_domain"],
    ),
];

/// The tool names, in the order they are listed.
pub fn names() -> Vec<&'static str> {
    TOOLS.iter().map(|(name, ..)| *name).collect()
}

/// A call the server executed.
#[derive(Debug, Clone)]
pub struct Executed {
    pub tool: String,
    pub arguments: Value,
}

/// What the server executed so far.
#[derive(Debug, Default)]
pub struct Ledger(Mutex<Vec<Executed>>);

impl Ledger {
    /// The calls of `tool` executed so far.
    pub fn calls_of(&self, tool: &str) -> Vec<Executed> {
        self.0
            .lock()
            .map(|l| l.iter().filter(|e| e.tool == tool).cloned().collect())
            .unwrap_or_default()
    }

    fn record(&self, tool: &str, arguments: &Value) {
        if let Ok(mut l) = self.0.lock() {
            l.push(Executed {
                tool: tool.to_owned(),
                arguments: arguments.clone(),
            });
        }
    }
}

/// The server's routes: `POST /mcp`.
pub fn router(ledger: Arc<Ledger>) -> axum::Router {
    axum::Router::new()
        .route("/mcp", post(message).get(no_stream))
        .with_state(ledger)
}

async fn no_stream() -> StatusCode {
    StatusCode::METHOD_NOT_ALLOWED
}

fn answer(id: &Value, outcome: Result<Value, (i64, String)>) -> Response {
    let body = match outcome {
        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
        Err((code, message)) => {
            json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
        }
    };
    axum::Json(body).into_response()
}

async fn message(State(ledger): State<Arc<Ledger>>, body: String) -> Response {
    let Ok(msg) = serde_json::from_str::<Value>(&body) else {
        return answer(&Value::Null, Err((-32700, "not JSON".into())));
    };
    let Some(id) = msg.get("id").cloned() else {
        // A notification (or a response): nothing to answer.
        return StatusCode::ACCEPTED.into_response();
    };
    let params = msg.get("params").cloned().unwrap_or_else(|| json!({}));
    match msg["method"].as_str().unwrap_or_default() {
        "initialize" => {
            let version = params["protocolVersion"].as_str().unwrap_or("2025-06-18");
            let mut r = answer(
                &id,
                Ok(json!({
                    "protocolVersion": version,
                    "capabilities": {"tools": {"listChanged": false}},
                    "serverInfo": {"name": "acme-tools", "version": env!("CARGO_PKG_VERSION")},
                })),
            );
            let session = surety_jose::random_b64(16).unwrap_or_else(|_| "demo".into());
            if let Ok(v) = session.parse() {
                r.headers_mut().insert("mcp-session-id", v);
            }
            r
        }
        "ping" => answer(&id, Ok(json!({}))),
        "tools/list" => answer(
            &id,
            Ok(json!({"tools": TOOLS.iter().map(describe).collect::<Vec<_>>()})),
        ),
        "tools/call" => {
            let name = params["name"].as_str().unwrap_or_default();
            let args = params
                .get("arguments")
                .cloned()
                .unwrap_or_else(|| json!({}));
            match execute(name, &args) {
                Some(text) => {
                    ledger.record(name, &args);
                    answer(
                        &id,
                        Ok(json!({"content": [{"type": "text", "text": text}], "isError": false})),
                    )
                }
                None => answer(&id, Err((-32602, format!("unknown tool `{name}`")))),
            }
        }
        other => answer(&id, Err((-32601, format!("no method `{other}`")))),
    }
}

fn describe((name, description, args): &(&str, &str, &[&str])) -> Value {
    let properties: serde_json::Map<String, Value> = args
        .iter()
        .map(|a| {
            let kind = if *a == "amount" { "number" } else { "string" };
            ((*a).to_owned(), json!({"type": kind}))
        })
        .collect();
    json!({"name": name, "description": description,
        "inputSchema": {"type": "object", "properties": properties, "required": args}})
}

/// What a tool does (here: says what it did).
fn execute(tool: &str, a: &Value) -> Option<String> {
    let s = |k: &str| a[k].as_str().unwrap_or("?").to_owned();
    Some(match tool {
        "crm.read_customer" => format!(
            "customer {}: Globex Ltd, contact Hank Scorpio, plan Enterprise",
            s("customer_id")
        ),
        "payments.transfer" => format!(
            "transferred {} {} to {}",
            a["amount"],
            s("currency"),
            s("to")
        ),
        "iam.grant_role" => format!("granted role {} to {}", s("role"), s("user")),
        "files.share_external" => {
            format!("shared {} with {}", s("path"), s("destination_domain"))
        }
        _ => return None,
    })
}
