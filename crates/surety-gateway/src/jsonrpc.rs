//! JSON-RPC 2.0 as MCP carries it: one message or a batch per POST body. The gateway reads
//! requests and notifications to decide on them, and writes its own error responses.

use serde_json::{Value, json};

/// JSON-RPC 2.0 §5.1: the request is not valid JSON.
pub const PARSE_ERROR: i64 = -32700;
/// §5.1: not a valid request object.
pub const INVALID_REQUEST: i64 = -32600;
/// §5.1: invalid method parameters.
pub const INVALID_PARAMS: i64 = -32602;
/// §5.1: internal error.
pub const INTERNAL_ERROR: i64 = -32603;
/// Server-defined (§5.1 reserves -32000 to -32099): the call was refused by policy, or the
/// upstream could not be reached.
pub const FORBIDDEN: i64 = -32003;
/// Server-defined: the call needs a human's approval first.
pub const APPROVAL_REQUIRED: i64 = -32004;
/// Server-defined: the upstream MCP server could not be reached.
pub const UPSTREAM_UNAVAILABLE: i64 = -32005;

/// One message of a POST body.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The request id; `None` for a notification (and for responses, which have no method).
    pub id: Option<Value>,
    /// The method; `None` for a response from the client (to a server request).
    pub method: Option<String>,
    /// The params (an object or absent).
    pub params: Value,
    /// The message as received.
    pub raw: Value,
}

/// Why a body is not JSON-RPC.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    /// Not JSON.
    #[error("the body is not JSON: {0}")]
    NotJson(String),
    /// JSON, but not a JSON-RPC 2.0 message or batch.
    #[error("{0}")]
    NotJsonRpc(String),
}

impl Malformed {
    /// The JSON-RPC error code for it.
    #[must_use]
    pub fn code(&self) -> i64 {
        match self {
            Self::NotJson(_) => PARSE_ERROR,
            Self::NotJsonRpc(_) => INVALID_REQUEST,
        }
    }
}

/// Folds a key as the most lenient JSON decoders match field names (Go's `encoding/json`
/// folds case, and `ſ` to `s`, `K` to `k`).
fn fold(key: &str) -> String {
    key.chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'ſ' => 's',
            other => other,
        })
        .collect()
}

/// Refuses objects whose keys another decoder could read differently from this one: two keys
/// equal but for case (`"method"` and `"Method"`), or a key with a NUL. The gateway decides
/// on what it parsed, and forwards exactly that, so no key may mean two things.
fn unambiguous(v: &Value) -> Result<(), Malformed> {
    match v {
        Value::Object(fields) => {
            let mut seen = std::collections::HashSet::new();
            for (k, v) in fields {
                if k.contains('\0') || !seen.insert(fold(k)) {
                    return Err(Malformed::NotJsonRpc(format!(
                        "the key `{}` is ambiguous (a NUL, or another key equal but for case)",
                        k.replace('\0', "\\0")
                    )));
                }
                unambiguous(v)?;
            }
            Ok(())
        }
        Value::Array(items) => items.iter().try_for_each(unambiguous),
        _ => Ok(()),
    }
}

fn message(v: Value) -> Result<Message, Malformed> {
    let bad = |why: &str| Malformed::NotJsonRpc(why.to_owned());
    unambiguous(&v)?;
    let obj = v
        .as_object()
        .ok_or_else(|| bad("a JSON-RPC message must be an object"))?;
    if obj.get("jsonrpc") != Some(&json!("2.0")) {
        return Err(bad("`jsonrpc` must be \"2.0\""));
    }
    let id = obj.get("id").cloned();
    if let Some(id) = &id
        && !(id.is_string() || id.is_number())
    {
        return Err(bad("`id` must be a string or a number"));
    }
    let method = match obj.get("method") {
        None => {
            // A response to a request the server made (sampling, elicitation…).
            if id.is_none() || !(obj.contains_key("result") || obj.contains_key("error")) {
                return Err(bad(
                    "a message needs a `method`, or an `id` and a `result` or `error`",
                ));
            }
            None
        }
        Some(Value::String(m)) if !m.is_empty() => Some(m.clone()),
        Some(_) => return Err(bad("`method` must be a non-empty string")),
    };
    let params = match obj.get("params") {
        None | Some(Value::Null) => Value::Object(serde_json::Map::new()),
        Some(p @ Value::Object(_)) => p.clone(),
        Some(_) => return Err(bad("MCP `params` must be an object")),
    };
    Ok(Message {
        id,
        method,
        params,
        raw: v,
    })
}

/// Parses a POST body: one message, or a non-empty batch.
pub fn parse(body: &[u8]) -> Result<(Vec<Message>, bool), Malformed> {
    let v: Value = serde_json::from_slice(body).map_err(|e| Malformed::NotJson(e.to_string()))?;
    match v {
        Value::Array(items) => {
            if items.is_empty() {
                return Err(Malformed::NotJsonRpc("an empty batch".into()));
            }
            Ok((
                items.into_iter().map(message).collect::<Result<_, _>>()?,
                true,
            ))
        }
        other => Ok((vec![message(other)?], false)),
    }
}

/// An error response to `id` (`null` when the request's id is unknown).
#[must_use]
pub fn error(id: Option<&Value>, code: i64, message: &str, data: Option<Value>) -> Value {
    let mut error = json!({"code": code, "message": message});
    if let Some(d) = data {
        error["data"] = d;
    }
    json!({"jsonrpc": "2.0", "id": id.cloned().unwrap_or(Value::Null), "error": error})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_notifications_responses_and_batches_parse() {
        let (one, batch) =
            parse(br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"}}"#)
                .unwrap();
        assert!(!batch);
        assert_eq!(one[0].method.as_deref(), Some("tools/call"));
        assert_eq!(one[0].params["name"], "x");
        let (many, batch) = parse(
            br#"[{"jsonrpc":"2.0","method":"notifications/initialized"},{"jsonrpc":"2.0","id":"a","result":{}}]"#,
        )
        .unwrap();
        assert!(batch);
        assert_eq!((many[0].id.clone(), many[1].method.clone()), (None, None));
    }

    #[test]
    fn malformed_bodies_get_the_spec_codes() {
        for (body, code) in [
            (&b"{not json"[..], PARSE_ERROR),
            (b"[]", INVALID_REQUEST),
            (b"42", INVALID_REQUEST),
            (br#"{"id":1,"method":"x"}"#, INVALID_REQUEST),
            (
                br#"{"jsonrpc":"2.0","id":{},"method":"x"}"#,
                INVALID_REQUEST,
            ),
            (br#"{"jsonrpc":"2.0","id":1,"method":7}"#, INVALID_REQUEST),
            (
                br#"{"jsonrpc":"2.0","id":1,"method":"x","params":[1]}"#,
                INVALID_REQUEST,
            ),
            (br#"{"jsonrpc":"2.0","id":1}"#, INVALID_REQUEST),
            // Keys another decoder could read otherwise: smuggling past the decision.
            (br#"{"jsonrpc":"2.0","id":1,"method":"ping","Method":"tools/call"}"#, INVALID_REQUEST),
            (br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","NAME":"b"}}"#, INVALID_REQUEST),
            (br#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"arguments":{"amount":1,"AMOUNT":9}}}"#, INVALID_REQUEST),
            (br#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"nam\u017fe":1,"namse":2}}"#, INVALID_REQUEST),
            (br#"{"jsonrpc":"2.0","id":1,"method\u0000":"x","method":"y"}"#, INVALID_REQUEST),
        ] {
            assert_eq!(
                parse(body).unwrap_err().code(),
                code,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn errors_name_the_request() {
        let e = error(Some(&json!(7)), FORBIDDEN, "no", Some(json!({"x": 1})));
        assert_eq!(
            e,
            json!({"jsonrpc":"2.0","id":7,"error":{"code":-32003,"message":"no","data":{"x":1}}})
        );
        assert_eq!(error(None, PARSE_ERROR, "bad", None)["id"], Value::Null);
    }
}
