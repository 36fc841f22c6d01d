//! Storage of federation: trusted peers, federation grants, the local tokens minted for
//! peers' agents, and agent cards.

use async_trait::async_trait;
use surety_core::audit::NewEvent;
use surety_core::id::{AgentId, HumanId};
use time::OffsetDateTime;

use crate::Result;

/// A trusted peer organisation.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerRecord {
    /// Its issuer URL (the `iss` of what it signs).
    pub issuer: String,
    /// A short name for people.
    pub name: String,
    /// Where its keys come from: `pinned` (given once) or `metadata` (fetched).
    pub source: String,
    /// Its RFC 8414 metadata URL, when its keys are fetched.
    pub metadata_url: Option<String>,
    /// Its JWKS (`{"keys": […]}`), pinned or last fetched.
    pub jwks: serde_json::Value,
    /// Where to ask whether a grant it issued is still active (RFC 7662).
    pub introspection_endpoint: Option<String>,
    /// When the keys were last fetched.
    pub fetched_at: Option<OffsetDateTime>,
    /// Who trusted it.
    pub created_by: HumanId,
    /// When.
    pub created_at: OffsetDateTime,
}

/// A local token minted for a peer's agent, and the peer's grant it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FederatedTokenRecord {
    /// The local token's `jti`.
    pub jti: String,
    /// The peer's issuer.
    pub peer: String,
    /// The federation grant (`fgr_…`).
    pub grant: surety_core::id::FederationGrantId,
    /// The peer's authorization grant's `jti`.
    pub assertion_jti: String,
    /// The peer's authorization grant itself (what is introspected at the peer).
    pub assertion: String,
    /// The local token's expiry.
    pub expires_at: OffsetDateTime,
}

/// Peers, federation grants and the tokens minted under them; agent cards.
#[async_trait]
pub trait FederationStore {
    /// Trusts a peer; [`StoreError::Conflict`] if its issuer or name is taken.
    async fn add_peer(&self, peer: &PeerRecord, events: &[NewEvent]) -> Result<()>;
    /// Replaces a peer's keys (and introspection endpoint) after a fetch.
    async fn update_peer_keys(
        &self,
        issuer: &str,
        jwks: &serde_json::Value,
        introspection_endpoint: Option<&str>,
        fetched_at: OffsetDateTime,
        events: &[NewEvent],
    ) -> Result<()>;
    /// One peer, by issuer.
    async fn get_peer(&self, issuer: &str) -> Result<Option<PeerRecord>>;
    /// Every peer, by name.
    async fn list_peers(&self) -> Result<Vec<PeerRecord>>;
    /// Stops trusting a peer (by issuer or name), revoking its federation grants;
    /// `false` if unknown.
    async fn remove_peer(
        &self,
        issuer: &str,
        at: OffsetDateTime,
        events: &[NewEvent],
    ) -> Result<bool>;
    /// Stores a new federation grant; the peer must be trusted.
    async fn create_federation_grant(
        &self,
        grant: &surety_core::federation::FederationGrant,
        events: &[NewEvent],
    ) -> Result<()>;
    /// One federation grant.
    async fn get_federation_grant(
        &self,
        id: surety_core::id::FederationGrantId,
    ) -> Result<Option<surety_core::federation::FederationGrant>>;
    /// Federation grants, newest first; only `peer`'s when given.
    async fn list_federation_grants(
        &self,
        peer: Option<&str>,
    ) -> Result<Vec<surety_core::federation::FederationGrant>>;
    /// Revokes an active federation grant; `false` if it was not active.
    async fn revoke_federation_grant(
        &self,
        id: surety_core::id::FederationGrantId,
        at: OffsetDateTime,
        events: &[NewEvent],
    ) -> Result<bool>;
    /// Records a token minted for a peer's agent, with its audit events.
    async fn record_federated_token(
        &self,
        token: &FederatedTokenRecord,
        events: &[NewEvent],
    ) -> Result<()>;
    /// Live (unexpired, unrevoked) federated tokens, one per peer grant (the latest-expiring).
    async fn live_federated_assertions(
        &self,
        now: OffsetDateTime,
    ) -> Result<Vec<FederatedTokenRecord>>;
    /// Revokes every token minted from `peer`'s grant `assertion_jti`; how many.
    async fn revoke_federated_tokens(
        &self,
        peer: &str,
        assertion_jti: &str,
        at: OffsetDateTime,
        events: &[NewEvent],
    ) -> Result<u64>;
    /// When `jti` was revoked, if it was.
    async fn token_revoked_at(&self, jti: &str) -> Result<Option<OffsetDateTime>>;
    /// Publishes (or replaces) an agent's card.
    async fn put_agent_card(
        &self,
        agent: AgentId,
        card: &serde_json::Value,
        at: OffsetDateTime,
        events: &[NewEvent],
    ) -> Result<()>;
    /// An agent's published card.
    async fn agent_card(&self, agent: AgentId) -> Result<Option<serde_json::Value>>;
    /// Withdraws an agent's card; `false` if it had none.
    async fn delete_agent_card(&self, agent: AgentId, events: &[NewEvent]) -> Result<bool>;
}
