//! The agent's side of MCP: JSON-RPC over Streamable HTTP, each request carrying the agent's
//! DPoP-bound token and a fresh proof signed by its key.

use reqwest::Method;
use serde_json::{Value, json};
use surety_sdk::AgentClient;

const PROTOCOL: &str = "2025-06-18";

/// An MCP session of one agent with one server, through the gateway.
pub struct Session<'a> {
    agent: &'a AgentClient,
    url: String,
    token: String,
    session: Option<String>,
    next: u64,
}

/// What came back over HTTP.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    /// `WWW-Authenticate`, when the gateway refused the request.
    pub challenge: Option<String>,
    /// The JSON-RPC message (`Null` when there was none).
    pub message: Value,
}

impl Reply {
    /// The JSON-RPC error code, if the answer is an error.
    pub fn error_code(&self) -> Option<i64> {
        self.message["error"]["code"].as_i64()
    }

    /// How the call ended, for people: the JSON-RPC error's code and message, or `allowed`.
    pub fn outcome(&self) -> String {
        match self.error_code() {
            Some(code) => format!(
                "{code} {}",
                self.message["error"]["message"].as_str().unwrap_or("")
            ),
            None => "allowed".to_owned(),
        }
    }

    /// The text the tool answered, if it was called.
    pub fn text(&self) -> Option<&str> {
        self.message["result"]["content"][0]["text"].as_str()
    }
}

/// Reads an answer: JSON, or the first message of an event stream.
pub async fn reply(response: reqwest::Response) -> anyhow::Result<Reply> {
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let text = response.text().await?;
    let message = serde_json::from_str(&text).unwrap_or_else(|_| {
        text.lines()
            .find_map(|l| l.strip_prefix("data:"))
            .and_then(|d| serde_json::from_str(d.trim()).ok())
            .unwrap_or(Value::Null)
    });
    Ok(Reply {
        status,
        challenge,
        message,
    })
}

impl<'a> Session<'a> {
    /// Opens a session (`initialize`, then `notifications/initialized`).
    pub async fn open(agent: &'a AgentClient, url: &str, token: &str) -> anyhow::Result<Self> {
        let mut s = Self {
            agent,
            url: url.to_owned(),
            token: token.to_owned(),
            session: None,
            next: 1,
        };
        let r = s
            .post(&json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": PROTOCOL, "capabilities": {},
                "clientInfo": {"name": "surety-demo-agent", "version": env!("CARGO_PKG_VERSION")}}}))
            .await?;
        anyhow::ensure!(
            r.message.get("result").is_some(),
            "initialize was answered {} {}",
            r.status,
            r.message
        );
        s.post(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await?;
        Ok(s)
    }

    async fn post(&mut self, message: &Value) -> anyhow::Result<Reply> {
        let mut request = self
            .agent
            .request(Method::POST, &self.url, &self.token)?
            .header("Accept", "application/json, text/event-stream")
            .header("MCP-Protocol-Version", PROTOCOL)
            .json(message);
        if let Some(s) = &self.session {
            request = request.header("Mcp-Session-Id", s);
        }
        let response = request.send().await?;
        if let Some(s) = response
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
        {
            self.session = Some(s.to_owned());
        }
        reply(response).await
    }

    /// The names of the tools listed to this agent.
    pub async fn tools(&mut self) -> anyhow::Result<Vec<String>> {
        let id = self.id();
        let r = self
            .post(&json!({"jsonrpc": "2.0", "id": id, "method": "tools/list"}))
            .await?;
        let tools = r.message["result"]["tools"]
            .as_array()
            .ok_or_else(|| anyhow::anyhow!("tools/list was answered {}", r.message))?;
        Ok(tools
            .iter()
            .filter_map(|t| t["name"].as_str().map(str::to_owned))
            .collect())
    }

    /// Calls `tool` with `arguments`, and Surety's `_meta` entries if any.
    pub async fn call(
        &mut self,
        tool: &str,
        arguments: &Value,
        meta: Option<Value>,
    ) -> anyhow::Result<Reply> {
        let id = self.id();
        let mut params = json!({"name": tool, "arguments": arguments});
        if let Some(m) = meta {
            params["_meta"] = m;
        }
        self.post(&json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params}))
            .await
    }

    fn id(&mut self) -> u64 {
        self.next += 1;
        self.next
    }
}
