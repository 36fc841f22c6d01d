//! Configuration: one TOML file (`deny_unknown_fields`), every key overridable by a
//! `SURETY_<KEY>` environment variable and by command-line flags, in that order of
//! precedence (flag > environment > file > default). Every key has a safe default, so no
//! file is needed. [`KEYS`] is the single list of keys: it drives the environment overlay
//! and generates `docs/configuration.md`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read `{path}`: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file, a variable or a flag has a bad value or an unknown key.
    #[error("{0}")]
    Invalid(String),
}

/// How a key's value is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// Text.
    String,
    /// A whole number.
    Integer,
    /// `true` or `false`.
    Bool,
    /// A duration such as `90s`, `5m`, `30d`.
    Duration,
}

/// One configuration key.
#[derive(Debug, Clone, Copy)]
pub struct KeySpec {
    /// Name in the TOML file.
    pub name: &'static str,
    /// Value kind.
    pub kind: KeyKind,
    /// Default, as written in TOML (empty: derived, see `doc`).
    pub default: &'static str,
    /// What it does.
    pub doc: &'static str,
}

impl KeySpec {
    /// The environment variable that overrides this key.
    #[must_use]
    pub fn env_var(&self) -> String {
        format!("SURETY_{}", self.name.to_uppercase())
    }
}

/// Every configuration key.
pub const KEYS: &[KeySpec] = &[
    KeySpec {
        name: "data_dir",
        kind: KeyKind::String,
        default: "./surety-data",
        doc: "Directory for the embedded database and the first admin's profile. Created with mode 0700.",
    },
    KeySpec {
        name: "listen",
        kind: KeyKind::String,
        default: "127.0.0.1:8080",
        doc: "Address and port to listen on.",
    },
    KeySpec {
        name: "issuer",
        kind: KeyKind::String,
        default: "",
        doc: "Public base URL of this deployment: the `iss` of its tokens and the base of every URL a DPoP proof must name (`htu`). Defaults to `http://<listen>`. Must be `https` unless the host is loopback or `dev` is on.",
    },
    KeySpec {
        name: "database_url",
        kind: KeyKind::String,
        default: "",
        doc: "`sqlite://PATH` or `postgres://USER@HOST/DB`. Defaults to `sqlite://<data_dir>/surety.db`.",
    },
    KeySpec {
        name: "db_max_connections",
        kind: KeyKind::Integer,
        default: "8",
        doc: "Most database connections (SQLite: readers; there is always one writer).",
    },
    KeySpec {
        name: "log_format",
        kind: KeyKind::String,
        default: "json",
        doc: "`json` (one object per line, with request ids) or `text`.",
    },
    KeySpec {
        name: "log_level",
        kind: KeyKind::String,
        default: "info",
        doc: "A `tracing` filter such as `info` or `surety_server=debug,info`.",
    },
    KeySpec {
        name: "max_body_bytes",
        kind: KeyKind::Integer,
        default: "65536",
        doc: "Largest request body accepted; larger bodies get 413.",
    },
    KeySpec {
        name: "request_timeout",
        kind: KeyKind::Duration,
        default: "30s",
        doc: "Longest time a request may take before it is answered 408.",
    },
    KeySpec {
        name: "shutdown_grace",
        kind: KeyKind::Duration,
        default: "10s",
        doc: "On SIGTERM/SIGINT, how long in-flight requests may finish.",
    },
    KeySpec {
        name: "access_token_ttl",
        kind: KeyKind::Duration,
        default: "5m",
        doc: "Lifetime of admin access tokens (at most 1h).",
    },
    KeySpec {
        name: "token_ttl",
        kind: KeyKind::Duration,
        default: "5m",
        doc: "Lifetime of agent access tokens minted by token exchange (at most 1h); never past the grant's expiry or a parent token's.",
    },
    KeySpec {
        name: "grant_max_lifetime",
        kind: KeyKind::Duration,
        default: "30d",
        doc: "Longest a grant may last (at most 365d). Every grant needs an expiry within it.",
    },
    KeySpec {
        name: "signing_alg",
        kind: KeyKind::String,
        default: "EdDSA",
        doc: "Algorithm of new organisation signing keys: `EdDSA` (Ed25519) or `ES256`. Applies when the first key is made and on `surety keys rotate`.",
    },
    KeySpec {
        name: "signing_kek_file",
        kind: KeyKind::String,
        default: "",
        doc: "File holding the 32-byte key-encryption key (base64url) that seals the signing keys stored in the database; mode 0600. Defaults to `<data_dir>/signing-kek`, created on first start. Every node sharing a database needs the same file.",
    },
    KeySpec {
        name: "key_refresh_interval",
        kind: KeyKind::Duration,
        default: "10s",
        doc: "How often a node re-reads the signing keys and the policy set in force, so a rotation or a policy change made on another node takes effect here.",
    },
    KeySpec {
        name: "org_domains",
        kind: KeyKind::String,
        default: "",
        doc: "The organisation's own domains, comma-separated (`acme.example,acme.internal`): decisions treat any other `destination_domain` as outside the organisation.",
    },
    KeySpec {
        name: "suspend_after_denials",
        kind: KeyKind::Integer,
        default: "5",
        doc: "An agent that asks for this many actions outside its token's scope within `suspend_window` is suspended at once (its tokens die; its owner reinstates it). 0 turns this off.",
    },
    KeySpec {
        name: "suspend_window",
        kind: KeyKind::Duration,
        default: "10m",
        doc: "The sliding window of `suspend_after_denials` (at most 1d).",
    },
    KeySpec {
        name: "suspend_above_rate",
        kind: KeyKind::Integer,
        default: "0",
        doc: "An agent asking for more decisions than this within a minute is suspended at once (a rate spike). 0 turns this off; set it above what your busiest agent legitimately does.",
    },
    KeySpec {
        name: "authzen_reason_admin",
        kind: KeyKind::Bool,
        default: "false",
        doc: "Include `reason_admin` (the decision's reasons, determining policies and policy version) in AuthZEN answers. Off by default: policy internals are not shared with resource servers.",
    },
    KeySpec {
        name: "enrollment_code_ttl",
        kind: KeyKind::Duration,
        default: "15m",
        doc: "Lifetime of one-time enrollment codes (at most 7d).",
    },
    KeySpec {
        name: "assertion_max_lifetime",
        kind: KeyKind::Duration,
        default: "5m",
        doc: "Longest lifetime of a JWT assertion (RFC 7523) accepted (at most 1h).",
    },
    KeySpec {
        name: "dpop_max_age",
        kind: KeyKind::Duration,
        default: "60s",
        doc: "Oldest DPoP proof `iat` accepted (RFC 9449 §11.1).",
    },
    KeySpec {
        name: "clock_skew",
        kind: KeyKind::Duration,
        default: "5s",
        doc: "Clock difference tolerated on `iat`, `exp` and `nbf`.",
    },
    KeySpec {
        name: "dpop_nonce",
        kind: KeyKind::Bool,
        default: "true",
        doc: "Require a server-provided DPoP nonce at the token endpoint (RFC 9449 §8).",
    },
    KeySpec {
        name: "dpop_nonce_lifetime",
        kind: KeyKind::Duration,
        default: "5m",
        doc: "How long a DPoP nonce stays valid (it is accepted for up to twice this).",
    },
    KeySpec {
        name: "approval_ttl",
        kind: KeyKind::Duration,
        default: "5m",
        doc: "How long a step-up approval request stays open when the agent asks for no `requested_expiry` (CIBA).",
    },
    KeySpec {
        name: "approval_max_lifetime",
        kind: KeyKind::Duration,
        default: "1h",
        doc: "Longest `requested_expiry` an agent may ask for an approval request (at most 1d).",
    },
    KeySpec {
        name: "approval_max_waiting",
        kind: KeyKind::Integer,
        default: "20",
        doc: "Most approval requests one agent may have waiting at once; more are refused (`access_denied`), so an agent cannot flood its humans' devices.",
    },
    KeySpec {
        name: "ciba_interval",
        kind: KeyKind::Duration,
        default: "5s",
        doc: "Smallest interval between two polls of one approval request; faster polls get `slow_down` (CIBA §11).",
    },
    KeySpec {
        name: "approval_webhook_url",
        kind: KeyKind::String,
        default: "",
        doc: "Off when empty. If set, every new approval request is POSTed there as a JWT signed by the org key (`typ: surety-approval-notice+jwt`), for a chat bot or phone app to relay to the approvers; and so is every suspension Surety makes on its own (`typ: surety-agent-notice+jwt`), for the agent's owner. Must be https unless `dev` is on.",
    },
    KeySpec {
        name: "ui_session_ttl",
        kind: KeyKind::Duration,
        default: "8h",
        doc: "How long a web UI sign-in (by passkey) lasts.",
    },
    KeySpec {
        name: "checkpoint_every",
        kind: KeyKind::Integer,
        default: "1000",
        doc: "A signed checkpoint of the audit log is made once this many events were appended since the last one (and at least every `checkpoint_interval` while events arrive).",
    },
    KeySpec {
        name: "checkpoint_interval",
        kind: KeyKind::Duration,
        default: "1m",
        doc: "Longest time new audit events wait for a signed checkpoint.",
    },
    KeySpec {
        name: "agent_key_max_age",
        kind: KeyKind::Duration,
        default: "90d",
        doc: "Key rotation policy: the inventory reports an agent's active key older than this as a stale key.",
    },
    KeySpec {
        name: "inventory_stale_after",
        kind: KeyKind::Duration,
        default: "30d",
        doc: "The inventory reports an active agent with no token or decision for this long as stale.",
    },
    KeySpec {
        name: "inventory_unused_after",
        kind: KeyKind::Duration,
        default: "14d",
        doc: "The inventory reports a granted scope that no allowed decision exercised for this long (in a grant at least this old) as an unused permission. Keep it below `grant_max_lifetime`, or no live grant is ever old enough to be judged.",
    },
    KeySpec {
        name: "inventory_expiring_within",
        kind: KeyKind::Duration,
        default: "7d",
        doc: "The inventory reports an active grant that ends within this as expiring.",
    },
    KeySpec {
        name: "inventory_recent",
        kind: KeyKind::Duration,
        default: "7d",
        doc: "The window of the inventory's recent activity, denials and suspensions (counted in whole UTC days).",
    },
    KeySpec {
        name: "federation_jwks_refresh",
        kind: KeyKind::Duration,
        default: "5m",
        doc: "How old a federation peer's fetched keys may grow before they are fetched again (an unknown `kid` refetches sooner, at most every 10s).",
    },
    KeySpec {
        name: "federation_poll_interval",
        kind: KeyKind::Duration,
        default: "2s",
        doc: "How often the authorization grants behind live federated tokens are introspected at their home organisation; one withdrawn there revokes its tokens here.",
    },
    KeySpec {
        name: "dev",
        kind: KeyKind::Bool,
        default: "false",
        doc: "Development mode: allows plain http for a non-loopback issuer, for agents' CIBA ping endpoints, for the approvals webhook and for federation peers' metadata, and ping endpoints and peers on private or loopback addresses. Logged loudly at start; weakens no other check.",
    },
];

/// The longest inventory threshold, in seconds.
pub(crate) const TEN_YEARS: u64 = 3650 * 86_400;

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// JSON lines.
    Json,
    /// Human-readable text.
    Text,
}

/// The resolved configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// See [`KEYS`].
    pub data_dir: PathBuf,
    /// See [`KEYS`].
    pub listen: SocketAddr,
    /// See [`KEYS`].
    #[serde(default)]
    pub issuer: Option<Url>,
    /// See [`KEYS`].
    #[serde(default)]
    pub database_url: Option<String>,
    /// See [`KEYS`].
    pub db_max_connections: u32,
    /// See [`KEYS`].
    pub log_format: LogFormat,
    /// See [`KEYS`].
    pub log_level: String,
    /// See [`KEYS`].
    pub max_body_bytes: usize,
    /// See [`KEYS`].
    #[serde(with = "human_duration")]
    pub request_timeout: Duration,
    /// See [`KEYS`].
    #[serde(with = "human_duration")]
    pub shutdown_grace: Duration,
    /// See [`KEYS`].
    #[serde(with = "human_duration")]
    pub access_token_ttl: Duration,
    /// See [`KEYS`].
    #[serde(with = "human_duration")]
    pub token_ttl: Duration,
    /// See [`KEYS`].
    #[serde(with = "human_duration")]
    pub grant_max_lifetime: Duration,
    /// See [`KEYS`].
    pub signing_alg: String,
    /// See [`KEYS`].
    #[serde(default)]
    pub signing_kek_file: Option<PathBuf>,
    /// See [`KEYS`].
    #[serde(with = "human_duration")]
    pub key_refresh_interval: Duration,
    /// See [`KEYS`].
    #[serde(default)]
    pub org_domains: String,
    /// See [`KEYS`].
    pub suspend_after_denials: u32,
    /// See [`KEYS`].
    #[serde(with = "human_duration")]
    pub suspend_window: Duration,
    /// See [`KEYS`].
    pub suspend_above_rate: u32,
    /// See [`KEYS`].
    pub authzen_reason_admin: bool,
    /// See [`KEYS`].
    #[serde(with = "human_duration")]
    pub enrollment_code_ttl: Duration,
    /// See [`KEYS`].
    #[serde(with = "human_duration")]
    pub assertion_max_lifetime: Duration,
    /// See [`KEYS`].
    #[serde(with = "human_duration")]
    pub dpop_max_age: Duration,
    /// See [`KEYS`].
    #[serde(with = "human_duration")]
    pub clock_skew: Duration,
    /// See [`KEYS`].
    pub dpop_nonce: bool,
    /// See [`KEYS`].
    #[serde(with = "human_duration")]
    pub dpop_nonce_lifetime: Duration,
    /// See [`KEYS`].
    #[serde(with = "human_duration")]
    pub approval_ttl: Duration,
    /// See [`KEYS`].
    #[serde(with = "human_duration")]
    pub approval_max_lifetime: Duration,
    /// See [`KEYS`].
    pub approval_max_waiting: u32,
    /// See [`KEYS`].
    #[serde(with = "human_duration")]
    pub ciba_interval: Duration,
    /// See [`KEYS`].
    #[serde(default)]
    pub approval_webhook_url: String,
    /// See [`KEYS`].
    #[serde(with = "human_duration")]
    pub ui_session_ttl: Duration,
    /// See [`KEYS`].
    pub checkpoint_every: u32,
    /// See [`KEYS`].
    #[serde(with = "human_duration")]
    pub checkpoint_interval: Duration,
    /// See [`KEYS`].
    #[serde(with = "human_duration")]
    pub agent_key_max_age: Duration,
    /// See [`KEYS`].
    #[serde(with = "human_duration")]
    pub inventory_stale_after: Duration,
    /// See [`KEYS`].
    #[serde(with = "human_duration")]
    pub inventory_unused_after: Duration,
    /// See [`KEYS`].
    #[serde(with = "human_duration")]
    pub inventory_expiring_within: Duration,
    /// See [`KEYS`].
    #[serde(with = "human_duration")]
    pub inventory_recent: Duration,
    /// See [`KEYS`].
    #[serde(with = "human_duration")]
    pub federation_jwks_refresh: Duration,
    /// See [`KEYS`].
    #[serde(with = "human_duration")]
    pub federation_poll_interval: Duration,
    /// See [`KEYS`].
    pub dev: bool,
}

mod human_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(|e| {
            serde::de::Error::custom(format!(
                "`{text}` is not a duration like 90s, 5m or 30d: {e}"
            ))
        })
    }
}

fn to_toml(spec: &KeySpec, raw: &str, source: &str) -> Result<toml::Value, ConfigError> {
    let bad = |what: &str| {
        ConfigError::Invalid(format!(
            "{source}: `{raw}` is not {what} (key `{}`)",
            spec.name
        ))
    };
    Ok(match spec.kind {
        KeyKind::String | KeyKind::Duration => toml::Value::String(raw.to_owned()),
        KeyKind::Integer => {
            toml::Value::Integer(raw.trim().parse().map_err(|_| bad("a whole number"))?)
        }
        KeyKind::Bool => toml::Value::Boolean(match raw.trim() {
            "true" | "1" | "yes" => true,
            "false" | "0" | "no" => false,
            _ => return Err(bad("true or false")),
        }),
    })
}

fn spec(name: &str) -> Option<&'static KeySpec> {
    KEYS.iter().find(|k| k.name == name)
}

impl Config {
    /// Loads the configuration: defaults, then `file` (if any), then `SURETY_*` variables
    /// read through `env`, then `overrides` (flag name, value). Validates the result.
    pub fn load(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
        overrides: &[(&str, String)],
    ) -> Result<Self, ConfigError> {
        let mut table = toml::Table::new();
        for k in KEYS.iter().filter(|k| !k.default.is_empty()) {
            table.insert(k.name.into(), to_toml(k, k.default, "default")?);
        }
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_owned(),
                source,
            })?;
            let from_file: toml::Table = toml::from_str(&text)
                .map_err(|e| ConfigError::Invalid(format!("{}: {e}", path.display())))?;
            for (key, value) in from_file {
                if spec(&key).is_none() {
                    return Err(ConfigError::Invalid(format!(
                        "{}: unknown key `{key}`; known keys: {}",
                        path.display(),
                        KEYS.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
                    )));
                }
                table.insert(key, value);
            }
        }
        for k in KEYS {
            if let Some(raw) = env(&k.env_var()) {
                table.insert(k.name.into(), to_toml(k, &raw, &k.env_var())?);
            }
        }
        for (name, raw) in overrides {
            let k = spec(name).ok_or_else(|| {
                ConfigError::Invalid(format!("unknown configuration key `{name}`"))
            })?;
            table.insert(
                k.name.into(),
                to_toml(k, raw, &format!("--{}", name.replace('_', "-")))?,
            );
        }
        let config: Config = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// The defaults, with `data_dir` pointed somewhere else (tests, `init`).
    pub fn defaults_in(data_dir: &Path) -> Result<Self, ConfigError> {
        Self::load(
            None,
            |_| None,
            &[("data_dir", data_dir.display().to_string())],
        )
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, why: &str| Err(ConfigError::Invalid(format!("`{key}`: {why}")));
        if let Some(issuer) = &self.issuer {
            if !matches!(issuer.scheme(), "http" | "https") {
                return invalid("issuer", "must be an http(s) URL");
            }
            if issuer.query().is_some() || issuer.fragment().is_some() {
                return invalid("issuer", "must not have a query or fragment");
            }
            let loopback = match issuer.host() {
                Some(url::Host::Domain(d)) => d == "localhost",
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                None => return invalid("issuer", "must have a host"),
            };
            if issuer.scheme() == "http" && !loopback && !self.dev {
                return invalid(
                    "issuer",
                    "must be https unless the host is loopback (or `dev` is on)",
                );
            }
        }
        if self.checkpoint_every == 0 {
            return invalid("checkpoint_every", "must be at least 1");
        }
        if self.approval_max_waiting == 0 || self.approval_max_waiting > 1_000_000 {
            return invalid("approval_max_waiting", "must be between 1 and 1000000");
        }
        if self.approval_ttl > self.approval_max_lifetime {
            return invalid("approval_ttl", "must not exceed `approval_max_lifetime`");
        }
        if !self.approval_webhook_url.is_empty() {
            match Url::parse(&self.approval_webhook_url) {
                Ok(u) if u.scheme() == "https" || (u.scheme() == "http" && self.dev) => {}
                Ok(_) => {
                    return invalid("approval_webhook_url", "must be https unless `dev` is on");
                }
                Err(e) => return invalid("approval_webhook_url", &e.to_string()),
            }
        }
        if !(1024..=16 * 1024 * 1024).contains(&self.max_body_bytes) {
            return invalid("max_body_bytes", "must be between 1024 and 16777216");
        }
        if self.db_max_connections == 0 || self.db_max_connections > 1000 {
            return invalid("db_max_connections", "must be between 1 and 1000");
        }
        let bounds = [
            ("access_token_ttl", self.access_token_ttl, 3600),
            ("token_ttl", self.token_ttl, 3600),
            ("grant_max_lifetime", self.grant_max_lifetime, 365 * 86400),
            ("key_refresh_interval", self.key_refresh_interval, 3600),
            ("suspend_window", self.suspend_window, 86400),
            ("enrollment_code_ttl", self.enrollment_code_ttl, 7 * 86400),
            ("assertion_max_lifetime", self.assertion_max_lifetime, 3600),
            ("dpop_max_age", self.dpop_max_age, 3600),
            ("clock_skew", self.clock_skew, 300),
            ("dpop_nonce_lifetime", self.dpop_nonce_lifetime, 3600),
            ("request_timeout", self.request_timeout, 3600),
            ("shutdown_grace", self.shutdown_grace, 3600),
            ("approval_ttl", self.approval_ttl, 86400),
            ("approval_max_lifetime", self.approval_max_lifetime, 86400),
            ("ciba_interval", self.ciba_interval, 60),
            ("ui_session_ttl", self.ui_session_ttl, 7 * 86400),
            ("checkpoint_interval", self.checkpoint_interval, 86400),
            ("agent_key_max_age", self.agent_key_max_age, TEN_YEARS),
            (
                "inventory_stale_after",
                self.inventory_stale_after,
                TEN_YEARS,
            ),
            (
                "inventory_unused_after",
                self.inventory_unused_after,
                TEN_YEARS,
            ),
            (
                "inventory_expiring_within",
                self.inventory_expiring_within,
                TEN_YEARS,
            ),
            ("inventory_recent", self.inventory_recent, TEN_YEARS),
            (
                "federation_jwks_refresh",
                self.federation_jwks_refresh,
                86400,
            ),
            (
                "federation_poll_interval",
                self.federation_poll_interval,
                3600,
            ),
        ];
        for (key, value, max_secs) in bounds {
            if (value.is_zero() && key != "clock_skew") || value.as_secs() > max_secs {
                return invalid(key, &format!("must be more than 0 and at most {max_secs}s"));
            }
        }
        if !matches!(self.signing_alg.as_str(), "EdDSA" | "ES256") {
            return invalid("signing_alg", "must be `EdDSA` or `ES256`");
        }
        Ok(())
    }

    /// The organisation's domains, as a list.
    #[must_use]
    pub fn org_domain_list(&self) -> Vec<String> {
        self.org_domains
            .split(',')
            .map(|d| d.trim().to_ascii_lowercase())
            .filter(|d| !d.is_empty())
            .collect()
    }

    /// The file holding the key-encryption key of the signing keys.
    #[must_use]
    pub fn kek_path(&self) -> PathBuf {
        self.signing_kek_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("signing-kek"))
    }

    /// The public base URL, without a trailing slash.
    #[must_use]
    pub fn issuer_url(&self) -> String {
        match &self.issuer {
            Some(u) => u.as_str().trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.listen),
        }
    }

    /// The database URL.
    #[must_use]
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("surety.db").display()))
    }

    /// Whether the database lives in the data directory.
    #[must_use]
    pub fn is_embedded(&self) -> bool {
        self.database_url.is_none()
    }
}

/// The configuration reference, in Markdown.
#[must_use]
pub fn reference_markdown() -> String {
    let mut out = String::from(
        "# Configuration reference\n\n\
         <!-- Generated by `surety config docs`; a test keeps it in step with the code. -->\n\n\
         Surety reads an optional TOML file (`--config FILE`), then `SURETY_*` environment \
         variables, then command-line flags; each overrides the one before. Unknown keys are \
         errors. Every key has a safe default, so `surety serve` needs no file. \
         `surety config check FILE` validates a file and names the offending key.\n\n\
         Durations are written like `90s`, `5m`, `12h` or `30d`.\n\n\
         | key | environment variable | default | meaning |\n|---|---|---|---|\n",
    );
    for k in KEYS {
        let default = if k.default.is_empty() {
            "(derived)".to_owned()
        } else {
            format!("`{}`", k.default)
        };
        out.push_str(&format!(
            "| `{}` | `{}` | {} | {} |\n",
            k.name,
            k.env_var(),
            default,
            k.doc
        ));
    }
    out.push_str(
        "\nExample `surety.toml`:\n\n```toml\nlisten = \"0.0.0.0:8443\"\n\
         issuer = \"https://surety.acme.example\"\n\
         database_url = \"postgres://surety@db.internal/surety\"\n\
         access_token_ttl = \"5m\"\n```\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(
        file: Option<&str>,
        env: &[(&str, &str)],
        flags: &[(&str, &str)],
    ) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("surety.toml");
        if let Some(text) = file {
            std::fs::write(&path, text).unwrap();
        }
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        let flags: Vec<(&str, String)> = flags.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        Config::load(
            file.map(|_| path.as_path()),
            |name| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()),
            &flags,
        )
    }

    #[test]
    fn defaults_need_nothing() {
        let c = load(None, &[], &[]).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.issuer_url(), "http://127.0.0.1:8080");
        assert_eq!(c.database_url(), "sqlite://./surety-data/surety.db");
        assert_eq!(c.access_token_ttl, Duration::from_secs(300));
        assert!(c.dpop_nonce);
    }

    #[test]
    fn flags_beat_environment_beat_file() {
        let file = "listen = \"127.0.0.1:1\"\naccess_token_ttl = \"2m\"\n";
        let c = load(Some(file), &[("SURETY_LISTEN", "127.0.0.1:2")], &[]).unwrap();
        assert_eq!(c.listen.port(), 2);
        assert_eq!(c.access_token_ttl, Duration::from_secs(120));
        let c = load(
            Some(file),
            &[("SURETY_LISTEN", "127.0.0.1:2")],
            &[("listen", "127.0.0.1:3")],
        )
        .unwrap();
        assert_eq!(c.listen.port(), 3);
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        let err = load(Some("lisen = \"x\"\n"), &[], &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("`lisen`"), "{err}");
        let err = load(None, &[("SURETY_MAX_BODY_BYTES", "lots")], &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("SURETY_MAX_BODY_BYTES") && err.contains("max_body_bytes"),
            "{err}"
        );
        let err = load(Some("access_token_ttl = \"forever\"\n"), &[], &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("forever"), "{err}");
        let err = load(Some("access_token_ttl = \"2h\"\n"), &[], &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("access_token_ttl"), "{err}");
    }

    #[test]
    fn plain_http_issuer_needs_loopback_or_dev() {
        let err = load(None, &[("SURETY_ISSUER", "http://surety.example")], &[]).unwrap_err();
        assert!(err.to_string().contains("https"), "{err}");
        load(
            None,
            &[
                ("SURETY_ISSUER", "http://surety.example"),
                ("SURETY_DEV", "true"),
            ],
            &[],
        )
        .unwrap();
        load(None, &[("SURETY_ISSUER", "http://localhost:9000")], &[]).unwrap();
        let c = load(None, &[("SURETY_ISSUER", "https://surety.example/")], &[]).unwrap();
        assert_eq!(c.issuer_url(), "https://surety.example");
    }

    #[test]
    fn every_field_has_a_key_spec() {
        let c = load(None, &[], &[]).unwrap();
        let toml::Value::Table(t) = toml::Value::try_from(&c).unwrap() else {
            panic!()
        };
        for name in t.keys() {
            assert!(spec(name).is_some(), "field `{name}` is missing from KEYS");
        }
        for k in KEYS {
            assert!(
                t.contains_key(k.name) || k.default.is_empty(),
                "KEYS has `{}` but Config does not",
                k.name
            );
        }
    }
}
