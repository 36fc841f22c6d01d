//! OpenID Shared Signals Framework 1.0: stream configuration and status (§8.1), and poll
//! delivery (RFC 8936). Field names are the specs'.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// Push delivery (RFC 8935).
pub const DELIVERY_PUSH: &str = "urn:ietf:rfc:8935";
/// Poll delivery (RFC 8936).
pub const DELIVERY_POLL: &str = "urn:ietf:rfc:8936";
/// The `typ` of a Security Event Token (RFC 8417 §2.3).
pub const SET_TYP: &str = "secevent+jwt";
/// The media type of a pushed SET (RFC 8935 §2).
pub const SET_MEDIA_TYPE: &str = "application/secevent+jwt";

/// How events reach the receiver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Delivery {
    /// `urn:ietf:rfc:8935` (push) or `urn:ietf:rfc:8936` (poll).
    pub method: String,
    /// Push: where SETs are POSTed (the receiver's). Poll: where the receiver polls (the
    /// transmitter's; set in answers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<String>,
}

/// A stream's configuration (SSF §8.1.1), as asked (`POST`) and as kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StreamConfig {
    /// Set by the transmitter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_id: Option<String>,
    /// The transmitter (set in answers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// The receiver's audience (set in answers: the registered resource server's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    /// Every event type this transmitter can send (set in answers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events_supported: Vec<String>,
    /// The event types the receiver asks for.
    #[serde(default)]
    pub events_requested: Vec<String>,
    /// What will be delivered: asked ∩ supported (set in answers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events_delivered: Vec<String>,
    /// How (poll when absent, SSF §8.1.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<Delivery>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A stream's status (SSF §8.1.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StreamStatus {
    /// The stream.
    pub stream_id: String,
    /// `enabled`, `paused` or `disabled`.
    pub status: String,
    /// Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Which stream (query of `GET`/`DELETE` on the configuration and status endpoints).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// The stream; all the receiver's when absent (`GET` only).
    pub stream_id: Option<String>,
}

/// A poll (RFC 8936 §2.4).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PollRequest {
    /// The `jti`s of SETs received and processed.
    #[serde(default)]
    pub ack: Vec<String>,
    /// SETs the receiver could not process, by `jti` (they are acknowledged too).
    #[serde(default, rename = "setErrs")]
    pub set_errs: serde_json::Map<String, Value>,
    /// At most this many SETs in the answer (0: only acknowledge).
    #[serde(default, rename = "maxEvents", skip_serializing_if = "Option::is_none")]
    pub max_events: Option<u32>,
    /// Answer at once even when there is nothing (this transmitter always does).
    #[serde(
        default,
        rename = "returnImmediately",
        skip_serializing_if = "Option::is_none"
    )]
    pub return_immediately: Option<bool>,
}

/// A poll's answer (RFC 8936 §2.5).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PollResponse {
    /// SETs by `jti`.
    pub sets: serde_json::Map<String, Value>,
    /// Whether more wait.
    #[serde(rename = "moreAvailable")]
    pub more_available: bool,
}
