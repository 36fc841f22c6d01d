//! `gateway.toml`: where the gateway listens, which Surety it trusts, and the upstream MCP
//! servers it fronts, each under a path prefix with its own resource identity at Surety.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Why a configuration was refused; names the offending key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A key is missing, unknown or invalid.
    #[error("{0}")]
    Invalid(String),
}

/// What the gateway does with a call that needs a human's approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepUpMode {
    /// Open the approval request on the agent's behalf and refuse with a JSON-RPC error
    /// naming it (`auth_req_id`) and what to approve; the agent calls again with
    /// `_meta.surety/auth_req_id` once the human approved (or with an approval token it
    /// obtained itself over CIBA, in `_meta.surety/approval_token`).
    Error,
    /// Open the approval request on the agent's behalf and hold the call (up to
    /// `hold_timeout`) while the human decides; then forward or refuse.
    Hold,
}

fn default_listen() -> String {
    "127.0.0.1:8480".into()
}

fn default_max_body() -> usize {
    1 << 20
}

fn default_hold() -> String {
    "60s".into()
}

fn default_upstream_timeout() -> String {
    "30s".into()
}

/// The file, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default = "default_listen")]
    listen: String,
    public_url: String,
    issuer: String,
    #[serde(default = "default_step_up")]
    step_up: StepUpMode,
    #[serde(default = "default_hold")]
    hold_timeout: String,
    #[serde(default = "default_upstream_timeout")]
    upstream_timeout: String,
    #[serde(default = "default_max_body")]
    max_body_bytes: usize,
    #[serde(default = "default_true")]
    introspect: bool,
    #[serde(default)]
    follow_signals: Option<String>,
    #[serde(default, rename = "upstream")]
    upstreams: Vec<RawUpstream>,
}

fn default_step_up() -> StepUpMode {
    StepUpMode::Error
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpstream {
    prefix: String,
    url: String,
    client_id: String,
    key_file: PathBuf,
    #[serde(default)]
    tools: BTreeMap<String, serde_json::Value>,
}

/// One upstream MCP server.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// The gateway path it is served under (`/crm`).
    pub prefix: String,
    /// The upstream's MCP endpoint.
    pub url: url::Url,
    /// The resource identifier tokens must name (`aud`): the gateway's public URL plus the
    /// prefix (RFC 8707, RFC 9728).
    pub resource: String,
    /// Its registration at Surety as a resource server (`rsv_…`).
    pub client_id: String,
    /// That registration's private key (JWK file).
    pub key_file: PathBuf,
    /// Declared mappings per tool (an `x-authzen-mapping` object each), which take
    /// precedence over what the upstream declares.
    pub tools: BTreeMap<String, serde_json::Value>,
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Address to listen on.
    pub listen: String,
    /// The URL clients address the gateway by (DPoP `htu`, resource identifiers).
    pub public_url: String,
    /// The Surety deployment that issues tokens and decides.
    pub issuer: String,
    /// What to do with a step-up.
    pub step_up: StepUpMode,
    /// How long a held call may wait for its approval.
    pub hold_timeout: Duration,
    /// How long the upstream may take to start answering.
    pub upstream_timeout: Duration,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// Ask Surety whether each token is still active (introspection) before serving it.
    pub introspect: bool,
    /// Follow Surety's security event stream, polling this often: tokens it withdraws are
    /// refused locally (with `introspect = false`, no call to Surety per request).
    pub follow_signals: Option<Duration>,
    /// The upstreams, by prefix.
    pub upstreams: Vec<Upstream>,
}

fn invalid(key: &str, why: impl std::fmt::Display) -> ConfigError {
    ConfigError::Invalid(format!("`{key}`: {why}"))
}

fn duration(key: &str, raw: &str) -> Result<Duration, ConfigError> {
    let d = humantime::parse_duration(raw)
        .map_err(|e| invalid(key, format!("`{raw}` is not a duration like 30s ({e})")))?;
    if d.is_zero() || d > Duration::from_secs(3600) {
        return Err(invalid(key, "must be more than 0 and at most 1h"));
    }
    Ok(d)
}

fn http_url(key: &str, raw: &str) -> Result<url::Url, ConfigError> {
    let u = url::Url::parse(raw).map_err(|e| invalid(key, format!("`{raw}`: {e}")))?;
    let loopback = matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match u.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => return Err(invalid(key, "must be https (http only on loopback)")),
    }
    if u.query().is_some() || u.fragment().is_some() {
        return Err(invalid(key, "must have no query or fragment"));
    }
    Ok(u)
}

impl GatewayConfig {
    /// Parses and validates `text` (the TOML of `path`, for messages; relative key files
    /// are resolved against `path`'s folder).
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let raw: Raw = toml::from_str(text)
            .map_err(|e| ConfigError::Invalid(format!("{}: {e}", path.display())))?;
        let public = http_url("public_url", &raw.public_url)?;
        http_url("issuer", &raw.issuer)?;
        if public.path() != "/" {
            return Err(invalid(
                "public_url",
                "must be an origin, without a path (upstreams are under their `prefix`)",
            ));
        }
        let public_url = public.as_str().trim_end_matches('/').to_owned();
        if raw.upstreams.is_empty() {
            return Err(invalid("upstream", "at least one `[[upstream]]` is needed"));
        }
        if raw.max_body_bytes == 0 || raw.max_body_bytes > 64 << 20 {
            return Err(invalid("max_body_bytes", "must be between 1 and 67108864"));
        }
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        let mut upstreams: Vec<Upstream> = Vec::new();
        for (i, u) in raw.upstreams.into_iter().enumerate() {
            let key = |k: &str| format!("upstream[{i}].{k}");
            let prefix = u.prefix.trim_end_matches('/').to_owned();
            let well_formed = prefix.starts_with('/')
                && prefix.len() > 1
                && prefix[1..].split('/').all(|s| {
                    !s.is_empty()
                        && s.chars()
                            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                });
            if !well_formed
                || prefix.starts_with("/.well-known")
                || prefix == "/healthz"
                || prefix == "/metrics"
            {
                return Err(invalid(
                    &key("prefix"),
                    format!("`{}` is not a path like /crm", u.prefix),
                ));
            }
            if upstreams.iter().any(|o| o.prefix == prefix) {
                return Err(invalid(&key("prefix"), format!("`{prefix}` is used twice")));
            }
            let url = http_url(&key("url"), &u.url)?;
            for (tool, mapping) in &u.tools {
                let envelope = mapping
                    .as_object()
                    .map(|m| m.keys().map(String::as_str).collect::<Vec<_>>());
                if !matches!(envelope.as_deref(), Some(["evaluation"] | ["evaluations"])) {
                    return Err(invalid(
                        &key(&format!("tools.{tool}")),
                        "must be an x-authzen-mapping: a table with exactly one of `evaluation`, `evaluations`",
                    ));
                }
            }
            let key_file = if u.key_file.is_absolute() {
                u.key_file
            } else {
                base.join(u.key_file)
            };
            upstreams.push(Upstream {
                resource: format!("{public_url}{prefix}"),
                prefix,
                url,
                client_id: u.client_id,
                key_file,
                tools: u.tools,
            });
        }
        Ok(Self {
            listen: raw.listen,
            public_url,
            issuer: raw.issuer.trim_end_matches('/').to_owned(),
            step_up: raw.step_up,
            hold_timeout: duration("hold_timeout", &raw.hold_timeout)?,
            upstream_timeout: duration("upstream_timeout", &raw.upstream_timeout)?,
            max_body_bytes: raw.max_body_bytes,
            introspect: raw.introspect,
            follow_signals: raw
                .follow_signals
                .as_deref()
                .map(|d| duration("follow_signals", d))
                .transpose()?,
            upstreams,
        })
    }

    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
        public_url = "https://gw.example"
        issuer = "https://surety.example"
        step_up = "hold"
        [[upstream]]
        prefix = "/crm"
        url = "http://127.0.0.1:9000/mcp"
        client_id = "rsv_x"
        key_file = "crm.jwk"
        [upstream.tools."payments.transfer".evaluation]
        action = { name = "payments.transfer" }
        resource = { type = "Resource", id = "$params.arguments.to" }
    "#;

    fn parse(text: &str) -> Result<GatewayConfig, ConfigError> {
        GatewayConfig::parse(text, Path::new("/etc/surety/gateway.toml"))
    }

    #[test]
    fn a_complete_file_resolves_resources_and_key_paths() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.upstreams[0].resource, "https://gw.example/crm");
        assert_eq!(c.upstreams[0].key_file, Path::new("/etc/surety/crm.jwk"));
        assert_eq!(c.step_up, StepUpMode::Hold);
        assert_eq!(c.hold_timeout, Duration::from_secs(60));
        assert_eq!(c.listen, "127.0.0.1:8480");
    }

    #[test]
    fn each_bad_key_is_named() {
        for (edit, key) in [
            (
                (
                    "public_url = \"https://gw.example\"",
                    "public_url = \"http://gw.example\"",
                ),
                "public_url",
            ),
            (
                ("prefix = \"/crm\"", "prefix = \"crm\""),
                "upstream[0].prefix",
            ),
            (
                ("prefix = \"/crm\"", "prefix = \"/.well-known/x\""),
                "upstream[0].prefix",
            ),
            (
                (
                    "url = \"http://127.0.0.1:9000/mcp\"",
                    "url = \"ftp://x/mcp\"",
                ),
                "upstream[0].url",
            ),
            (("step_up = \"hold\"", "step_up = \"wait\""), "step_up"),
            (
                ("step_up = \"hold\"", "hold_timeout = \"0s\""),
                "hold_timeout",
            ),
            (("step_up = \"hold\"", "colour = \"red\""), "colour"),
        ] {
            let text = GOOD.replace(edit.0, edit.1);
            let err = parse(&text).unwrap_err().to_string();
            assert!(err.contains(key), "{key}: {err}");
        }
        let bad_mapping = GOOD.replace(
            "[upstream.tools.\"payments.transfer\".evaluation]",
            "[upstream.tools.\"payments.transfer\".evalution]",
        );
        let err = parse(&bad_mapping).unwrap_err().to_string();
        assert!(err.contains("upstream[0].tools.payments.transfer"), "{err}");
        let with_path = GOOD.replace("https://gw.example\"", "https://gw.example/mcp\"");
        assert!(
            parse(&with_path)
                .unwrap_err()
                .to_string()
                .contains("public_url")
        );
        let twice = format!(
            "{GOOD}\n[[upstream]]\nprefix = \"/crm/\"\nurl = \"http://127.0.0.1:1/mcp\"\nclient_id = \"rsv_y\"\nkey_file = \"y.jwk\"\n"
        );
        assert!(
            parse(&twice)
                .unwrap_err()
                .to_string()
                .contains("used twice")
        );
        let none = "public_url = \"https://gw.example\"\nissuer = \"https://s.example\"\n";
        assert!(parse(none).unwrap_err().to_string().contains("upstream"));
    }
}
