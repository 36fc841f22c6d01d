//! Surety's storage: one small trait per flow, each implemented for SQLite (the embedded
//! default) and PostgreSQL (scale-out). Both backends run the same SQL text — written once
//! in `shared/` and compiled for each — and pass the same test suite.
//!
//! Mutations are *decided* by the caller (with the rules in `surety-core`) and *applied*
//! here atomically, together with their audit events, and only if the state they were
//! decided on is still current (compare-and-set); otherwise [`StoreError::Stale`].

#![expect(
    clippy::duplicate_mod,
    reason = "shared/ holds the SQL of both backends; each backend module compiles it against its own driver"
)]

mod federation;
mod signals;

pub use federation::{FederatedTokenRecord, FederationStore, PeerRecord};
pub use signals::{StreamRecord, StreamStore};

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use surety_core::agent::{Agent, AgentStatus};
use surety_core::approval::{Approval, ApprovalStatus, Vote};
use surety_core::audit::{AuditEvent, AuditFilter, AuditScope, NewEvent};
use surety_core::grant::{Grant, GrantStatus};
use surety_core::human::{Human, HumanStatus, Role};
use surety_core::id::{AgentId, ApprovalId, GrantId, HumanId, PrincipalId, ResourceServerId};
use surety_core::inventory::AgentFacts;
use surety_core::key::{KeyRecord, KeyStatus};
use surety_core::page::{Page, PageRequest};

mod dbtime;
mod error;
mod postgres;
mod rows;
mod sqlite;
pub mod testing;

pub use error::{StoreError, redact_url};
pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// Rules that span rows, and so must be applied by one transaction at a time. A transaction
/// takes `Admins` (the last-admin rule) before touching any row, and `Audit` (event order)
/// last, just before commit — a fixed order, so these never wait on each other in a cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Serial {
    /// Changes of a human's status.
    Admins,
    /// Appends to the audit log: commit order equals `seq` order.
    Audit,
    /// Creating and rotating the organisation's signing keys.
    SigningKeys,
    /// Numbering policy-set versions.
    Policies,
}

/// Result of a storage operation.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Builds the audit event recorded for one agent suspended by a cascade.
pub type CascadeEvent<'a> = &'a (dyn Fn(&Agent) -> NewEvent + Send + Sync);

/// Filters for listing humans.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HumanFilter {
    /// Only humans in this state.
    pub status: Option<HumanStatus>,
    /// Only humans with this role.
    pub role: Option<Role>,
}

/// Filters for listing agents.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentFilter {
    /// Only this agent.
    pub id: Option<AgentId>,
    /// Only agents of this owner.
    pub owner: Option<HumanId>,
    /// Only agents in this state.
    pub status: Option<AgentStatus>,
    /// Only agents in this environment.
    pub environment: Option<String>,
}

/// A decided change of a human's status, to apply if the human is still in `from`.
#[derive(Debug, Clone)]
pub struct HumanStatusChange {
    /// Who.
    pub id: HumanId,
    /// State the decision was made on.
    pub from: HumanStatus,
    /// New state.
    pub to: HumanStatus,
    /// When.
    pub at: OffsetDateTime,
}

/// A decided change of an agent's status, to apply if the agent is still in `from`.
#[derive(Debug, Clone)]
pub struct AgentStatusChange {
    /// Which agent.
    pub id: AgentId,
    /// State the decision was made on.
    pub from: AgentStatus,
    /// New state.
    pub to: AgentStatus,
    /// Reason recorded on the agent.
    pub reason: Option<String>,
    /// What happens to the agent's keys that are still usable (`active`, and `retired` when
    /// revoking): moved to this status.
    pub keys_to: Option<KeyStatus>,
    /// The keys the decision expects `keys_to` to change; if others would change (a key was
    /// added or revoked meanwhile), the change is [`StoreError::Stale`].
    pub keys: Vec<String>,
    /// When set, the change applies only if the agent was not changed after this moment
    /// (`updated_at`): a decision drawn from what was counted then (strikes, say) must not
    /// land on an agent its owner has reinstated since. Otherwise [`StoreError::Stale`].
    pub unchanged_since: Option<OffsetDateTime>,
    /// When.
    pub at: OffsetDateTime,
}

/// A one-time enrollment code, stored only as a hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrollment {
    /// SHA-256 of the code, base64url.
    pub code_hash: String,
    /// The human who may redeem it.
    pub human: HumanId,
    /// When issued.
    pub created_at: OffsetDateTime,
    /// When it stops working.
    pub expires_at: OffsetDateTime,
}

/// An issued access token, stored only as a hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessTokenRecord {
    /// SHA-256 of the token, base64url.
    pub token_hash: String,
    /// Whose token.
    pub human: HumanId,
    /// Thumbprint of the key the token is bound to (DPoP `cnf.jkt`).
    pub jkt: String,
    /// Space-separated scopes.
    pub scope: String,
    /// When issued.
    pub issued_at: OffsetDateTime,
    /// When it expires.
    pub expires_at: OffsetDateTime,
}

/// Filters for listing grants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrantFilter {
    /// Only grants to this agent.
    pub agent: Option<AgentId>,
    /// Only grants of this principal.
    pub principal: Option<HumanId>,
    /// Only grants in this state as of `now` (`expired`: proposed or active, past expiry;
    /// `proposed`/`active`: and not yet expired).
    pub status: Option<(GrantStatus, OffsetDateTime)>,
    /// Only grants this human may see: theirs as principal, or for an agent they own.
    pub visible_to: Option<HumanId>,
}

/// A decided change of a grant's state, to apply if the grant is still in `from`.
#[derive(Debug, Clone)]
pub struct GrantStatusChange {
    /// Which grant.
    pub id: GrantId,
    /// Stored state the decision was made on.
    pub from: GrantStatus,
    /// New state.
    pub to: GrantStatus,
    /// Reason (revoking, declining).
    pub reason: Option<String>,
    /// When; moving to `active` also requires the grant to be unexpired at this instant.
    pub at: OffsetDateTime,
}

/// An organisation signing key as stored: the private half sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    /// RFC 7638 thumbprint of the public key.
    pub kid: String,
    /// JWS algorithm (`EdDSA` or `ES256`).
    pub alg: String,
    /// The public JWK.
    pub public_jwk: serde_json::Value,
    /// The private JWK, sealed under the key-encryption key.
    pub sealed_private: Vec<u8>,
    /// `active` (the signer) or `retired`.
    pub status: String,
    /// When created.
    pub created_at: OffsetDateTime,
    /// When rotation retired it.
    pub retired_at: Option<OffsetDateTime>,
    /// Until when a retired key stays published (its last tokens expire by then).
    pub publish_until: Option<OffsetDateTime>,
}

/// A resource server registered as an OAuth client: it authenticates to introspection
/// with `private_key_jwt` and learns only about tokens for its audience.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceServer {
    /// `rsv_…`: its `client_id`.
    pub id: ResourceServerId,
    /// Display name.
    pub name: String,
    /// The audience (resource URL) tokens name for it.
    pub audience: String,
    /// Thumbprint of its public key.
    pub kid: String,
    /// Its public JWK.
    pub jwk: serde_json::Value,
    /// `active` or `disabled`.
    pub status: String,
    /// The admin who registered it.
    pub created_by: HumanId,
    /// When.
    pub created_at: OffsetDateTime,
}

/// Something an agent did that is recorded as it happens (a token issued, a decision made):
/// its audit events, and the agent's `last_seen_at`.
#[derive(Debug, Clone)]
pub struct AgentActivity {
    /// The agent.
    pub agent: AgentId,
    /// When.
    pub at: OffsetDateTime,
    /// Its audit events.
    pub events: Vec<NewEvent>,
    /// Whether it counts against the agent (an attempt outside its scope).
    pub strike: bool,
    /// What it was, for the agent's daily activity.
    pub kind: ActivityKind,
    /// The grant and scope it exercised (a decision that allowed an action in the token's
    /// scope), for the inventory's unused-permission report.
    pub exercised: Option<(GrantId, String)>,
}

/// What an [`AgentActivity`] was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivityKind {
    /// An access token was issued.
    Token,
    /// A decision allowed.
    Allowed,
    /// A decision denied.
    Denied,
    /// A decision asked for a human's approval.
    SteppedUp,
    /// A refusal made before any policy ran (a token for another audience, a grant gone):
    /// it says nothing about the agent and is not counted.
    Refused,
}

/// What to read to decide whether a token is still active.
#[derive(Debug, Clone)]
pub struct StandingQuery<'a> {
    /// The token's grant.
    pub grant: GrantId,
    /// The token's principal.
    pub principal: HumanId,
    /// Every agent of the chain.
    pub agents: &'a [AgentId],
    /// Every key the chain is bound to (the token's and its parents' `cnf.jkt`).
    pub keys: &'a [&'a str],
    /// The token's `jti` and its parents'.
    pub jtis: &'a [&'a str],
}

/// What a token's standing needs to know of its grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrantStanding {
    /// The grant's agent (the root of every chain minted from it).
    pub agent: AgentId,
    /// Its principal.
    pub principal: HumanId,
    /// Stored state.
    pub status: GrantStatus,
    /// End of validity.
    pub expires_at: OffsetDateTime,
}

/// The current states a token depends on.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenStanding {
    /// The grant, if it exists.
    pub grant: Option<GrantStanding>,
    /// The principal's state and revocation watermark, if they exist.
    pub principal: Option<(HumanStatus, Option<OffsetDateTime>)>,
    /// Each agent found, with its state and revocation watermark.
    pub agents: Vec<(AgentId, AgentStatus, Option<OffsetDateTime>)>,
    /// Each key found: its thumbprint, state, holder, and when its state last changed.
    pub keys: Vec<(String, KeyStatus, PrincipalId, Option<OffsetDateTime>)>,
    /// Those of the `jtis` that were revoked, with when.
    pub revoked: Vec<(String, OffsetDateTime)>,
}

/// An applied policy set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySetRecord {
    /// Its number (1, 2, …); the newest is in force.
    pub version: u64,
    /// The action catalog (a Cedar schema fragment).
    pub catalog: String,
    /// The Cedar policies.
    pub policies: String,
    /// Why it was applied.
    pub note: Option<String>,
    /// Who applied it.
    pub created_by: HumanId,
    /// When.
    pub created_at: OffsetDateTime,
}

/// Bootstrapping a new deployment.
#[async_trait]
pub trait OrgStore {
    /// Whether any human exists yet.
    async fn is_initialized(&self) -> Result<bool>;
    /// Creates the first admin with an enrolled device key; fails with
    /// [`StoreError::AlreadyInitialized`] if any human exists.
    async fn bootstrap(
        &self,
        admin: &Human,
        device_key: &KeyRecord,
        events: &[NewEvent],
    ) -> Result<()>;
    /// A server-internal random value shared by every node: the first caller's `candidate`
    /// is stored (at `at`) and every caller gets the stored value.
    async fn server_secret(
        &self,
        name: &str,
        candidate: &[u8],
        at: OffsetDateTime,
    ) -> Result<Vec<u8>>;
}

/// Humans and their lifecycle.
#[async_trait]
pub trait HumanStore {
    /// Registers a human, optionally with a first enrollment code. Duplicate e-mail →
    /// [`StoreError::Conflict`].
    async fn create_human(
        &self,
        human: &Human,
        enrollment: Option<&Enrollment>,
        events: &[NewEvent],
    ) -> Result<()>;
    /// One human.
    async fn get_human(&self, id: HumanId) -> Result<Option<Human>>;
    /// Humans ordered by id (creation time).
    async fn list_humans(&self, filter: &HumanFilter, page: &PageRequest) -> Result<Page<Human>>;
    /// Applies a decided status change. Deactivating also suspends every `active` agent the
    /// human owns (one `cascade` event each), and refuses to remove the last active admin.
    /// Returns the agents suspended.
    async fn change_human_status(
        &self,
        change: &HumanStatusChange,
        events: &[NewEvent],
        cascade: CascadeEvent<'_>,
    ) -> Result<Vec<AgentId>>;
}

/// One-time enrollment codes that let a human enroll a device key.
#[async_trait]
pub trait EnrollmentStore {
    /// Issues a code; earlier unused codes of the same human stop working.
    async fn issue_enrollment(&self, enrollment: &Enrollment, events: &[NewEvent]) -> Result<()>;
    /// Redeems a code once, enrolling `key` for its human (who must be active). Unknown,
    /// used or expired codes → [`StoreError::NotFound`]. Returns the human.
    async fn redeem_enrollment(
        &self,
        code_hash: &str,
        now: OffsetDateTime,
        key: &(dyn Fn(HumanId) -> (KeyRecord, Vec<NewEvent>) + Send + Sync),
    ) -> Result<HumanId>;
}

/// Agents and their lifecycle.
#[async_trait]
pub trait AgentStore {
    /// Registers an agent with its first key. Unknown owner → [`StoreError::NotFound`];
    /// deactivated owner, duplicate name for the owner, or a key thumbprint ever seen
    /// before → [`StoreError::Conflict`].
    async fn create_agent(&self, agent: &Agent, key: &KeyRecord, events: &[NewEvent])
    -> Result<()>;
    /// One agent.
    async fn get_agent(&self, id: AgentId) -> Result<Option<Agent>>;
    /// Agents ordered by id (creation time), keyset-paginated.
    async fn list_agents(&self, filter: &AgentFilter, page: &PageRequest) -> Result<Page<Agent>>;
    /// Applies a decided status change (and its effect on keys).
    async fn change_agent_status(
        &self,
        change: &AgentStatusChange,
        events: &[NewEvent],
    ) -> Result<()>;
}

/// Public keys of agents and humans, by RFC 7638 thumbprint.
#[async_trait]
pub trait KeyStore {
    /// One key.
    async fn get_key(&self, kid: &str) -> Result<Option<KeyRecord>>;
    /// Every key a principal ever held, oldest first.
    async fn list_keys(&self, holder: PrincipalId) -> Result<Vec<KeyRecord>>;
    /// Adds a key to an agent that is still `active` or `suspended` — key rotation. With
    /// `retire`, the agent's active keys are retired in the same step, and must be exactly
    /// those listed. A thumbprint ever seen before → [`StoreError::Conflict`]; an agent that
    /// left those states, or keys that moved since they were read → [`StoreError::Stale`].
    async fn add_agent_key(
        &self,
        agent: AgentId,
        key: &KeyRecord,
        retire: Option<&[String]>,
        events: &[NewEvent],
    ) -> Result<()>;
    /// Applies a decided key status change if the key is still in `from`.
    async fn change_key_status(
        &self,
        kid: &str,
        from: KeyStatus,
        to: KeyStatus,
        at: OffsetDateTime,
        events: &[NewEvent],
    ) -> Result<()>;
}

/// An access token issued to a resource server, stored only as a hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientTokenRecord {
    /// SHA-256 of the token, base64url.
    pub token_hash: String,
    /// The resource server.
    pub client: ResourceServerId,
    /// Thumbprint of the key it is bound to.
    pub jkt: String,
    /// Space-separated scopes.
    pub scope: String,
    /// When issued.
    pub issued_at: OffsetDateTime,
    /// When it expires.
    pub expires_at: OffsetDateTime,
}

/// Access tokens issued to humans for the admin API.
#[async_trait]
pub trait TokenStore {
    /// Stores an issued token.
    async fn insert_access_token(
        &self,
        token: &AccessTokenRecord,
        events: &[NewEvent],
    ) -> Result<()>;
    /// Looks a token up by hash.
    async fn get_access_token(&self, token_hash: &str) -> Result<Option<AccessTokenRecord>>;
    /// Stores a token issued to a resource server.
    async fn insert_client_token(
        &self,
        token: &ClientTokenRecord,
        events: &[NewEvent],
    ) -> Result<()>;
    /// Looks a resource server's token up by hash.
    async fn get_client_token(&self, token_hash: &str) -> Result<Option<ClientTokenRecord>>;
}

/// Single-use values (`jti` of DPoP proofs and assertions), shared by every node.
#[async_trait]
pub trait ReplayStore {
    /// Records `key` until `until`; [`StoreError::Replay`] if it is already recorded and
    /// not expired at `now`.
    async fn remember(&self, key: &str, until: OffsetDateTime, now: OffsetDateTime) -> Result<()>;
    /// Records several keys in one transaction (group commit), in order; for each, `true` if
    /// it was recorded, `false` if it was already there (a replay — also when the same key
    /// appears twice in `entries`).
    async fn remember_many(
        &self,
        entries: &[(String, OffsetDateTime)],
        now: OffsetDateTime,
    ) -> Result<Vec<bool>>;
    /// Deletes expired replay entries and tokens; returns how many rows went.
    async fn purge_expired(&self, now: OffsetDateTime) -> Result<u64>;
}

/// The audit log.
#[async_trait]
pub trait AuditStore {
    /// Appends events on their own (for changes that touch nothing else).
    async fn append_events(&self, events: &[NewEvent]) -> Result<()>;
    /// Events newest first, keyset-paginated by `seq`.
    async fn list_events(
        &self,
        scope: AuditScope,
        filter: &AuditFilter,
        page: &PageRequest,
    ) -> Result<Page<AuditEvent>>;
}

/// Grants: delegations from humans to agents.
#[async_trait]
pub trait GrantStore {
    /// Stores a new grant. Its principal must be active (held until commit) and its agent
    /// active; otherwise [`StoreError::Conflict`] (or [`StoreError::NotFound`]).
    async fn create_grant(&self, grant: &Grant, events: &[NewEvent]) -> Result<()>;
    /// One grant.
    async fn get_grant(&self, id: GrantId) -> Result<Option<Grant>>;
    /// Grants ordered by id (creation time), keyset-paginated.
    async fn list_grants(&self, filter: &GrantFilter, page: &PageRequest) -> Result<Page<Grant>>;
    /// Applies a decided state change. Moving to `active` requires, until commit, an active
    /// principal, an active agent and an unexpired grant.
    async fn change_grant_status(
        &self,
        change: &GrantStatusChange,
        events: &[NewEvent],
    ) -> Result<()>;
}

/// The organisation's signing keys.
#[async_trait]
pub trait SigningKeyStore {
    /// Keys to publish at `now`: the active one(s) and retired keys still within
    /// `publish_until`, newest first.
    async fn published_signing_keys(&self, now: OffsetDateTime) -> Result<Vec<SigningKeyRecord>>;
    /// Every key ever made, newest first.
    async fn all_signing_keys(&self) -> Result<Vec<SigningKeyRecord>>;
    /// Stores `key` as the signer if there is none yet (the first node to start makes it);
    /// returns whether it was stored.
    async fn create_first_signing_key(
        &self,
        key: &SigningKeyRecord,
        events: &[NewEvent],
    ) -> Result<bool>;
    /// Makes `key` the signer and retires the current one(s), published until
    /// `publish_until`. Returns the retired kids.
    async fn rotate_signing_key(
        &self,
        key: &SigningKeyRecord,
        publish_until: OffsetDateTime,
        events: &[NewEvent],
    ) -> Result<Vec<String>>;
}

/// Resource servers registered as clients.
#[async_trait]
pub trait ResourceServerStore {
    /// Registers one. A taken audience or key → [`StoreError::Conflict`].
    async fn create_resource_server(&self, rs: &ResourceServer, events: &[NewEvent]) -> Result<()>;
    /// One resource server.
    async fn get_resource_server(&self, id: ResourceServerId) -> Result<Option<ResourceServer>>;
    /// Every resource server, by id.
    async fn list_resource_servers(&self) -> Result<Vec<ResourceServer>>;
}

/// Issued tokens are not stored; these record what their activity depends on.
#[async_trait]
pub trait CredentialStore {
    /// Records agents' activity (the audit events, and each agent's `last_seen_at`), all in
    /// one transaction (group commit).
    async fn record_agent_activity(&self, issued: &[AgentActivity]) -> Result<()>;
    /// How many events of `kind` concerning `agent` were recorded since `since`.
    async fn count_agent_events(
        &self,
        agent: AgentId,
        kind: surety_core::audit::EventKind,
        since: OffsetDateTime,
    ) -> Result<u64>;
    /// How many strikes `agent` has had since `since`.
    async fn count_strikes(&self, agent: AgentId, since: OffsetDateTime) -> Result<u64>;
    /// Revokes one token until `expires_at`; `false` if it was already revoked.
    async fn revoke_token(
        &self,
        jti: &str,
        expires_at: OffsetDateTime,
        at: OffsetDateTime,
        events: &[NewEvent],
    ) -> Result<bool>;
    /// The current states a token depends on.
    async fn token_standing(&self, query: &StandingQuery<'_>) -> Result<TokenStanding>;
}

/// Policy sets, versioned.
#[async_trait]
pub trait PolicyStore {
    /// The set in force (the newest), if any was ever applied.
    async fn current_policy_set(&self) -> Result<Option<PolicySetRecord>>;
    /// One version.
    async fn policy_set(&self, version: u64) -> Result<Option<PolicySetRecord>>;
    /// Every version, newest first, keyset-paginated by version.
    async fn list_policy_sets(&self, page: &PageRequest) -> Result<Page<PolicySetRecord>>;
    /// Stores a new version (numbered after the newest) with its events; returns it.
    async fn apply_policy_set(
        &self,
        catalog: &str,
        policies: &str,
        note: Option<&str>,
        by: HumanId,
        at: OffsetDateTime,
        events: &(dyn Fn(u64) -> Vec<NewEvent> + Send + Sync),
    ) -> Result<u64>;
}

/// Everything Surety stores.
/// Which approval requests to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApprovalFilter {
    /// Only requests this human may answer.
    pub approver: Option<HumanId>,
    /// Only requests made by this agent.
    pub client: Option<AgentId>,
    /// Only requests in this stored state.
    pub status: Option<ApprovalStatus>,
    /// Only requests that have not expired at this instant.
    pub unexpired_at: Option<OffsetDateTime>,
}

/// A decided change of an approval's state, applied only if it is still in `from` (and,
/// when `from` is `redeemed`, only for the token it was redeemed for).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalTransition {
    /// Which request.
    pub id: ApprovalId,
    /// State the decision was made on.
    pub from: ApprovalStatus,
    /// New state.
    pub to: ApprovalStatus,
    /// Set on redemption; must match when consuming a redeemed approval.
    pub token_jti: Option<String>,
    /// When.
    pub at: OffsetDateTime,
}

/// Whose open requests to cancel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalScope {
    /// Every request by, or on behalf of, this agent (as actor or in its chain).
    Agent(AgentId),
    /// Every request under this grant.
    Grant(GrantId),
    /// Every request on this human's authority, or by an agent they own.
    Human(HumanId),
}

/// Builds the votes' outcome inside the vote's transaction: the new state, if the votes
/// settle the request, and the audit events to record.
pub type VoteOutcome<'a> =
    &'a (dyn Fn(&Approval, &[Vote]) -> (Option<ApprovalStatus>, Vec<NewEvent>) + Send + Sync);

/// A registered passkey (webauthn-rs' serialised `Passkey`).
#[derive(Debug, Clone, PartialEq)]
pub struct PasskeyRecord {
    /// Credential id, base64url.
    pub cred_id: String,
    /// Whose.
    pub human: HumanId,
    /// The credential as webauthn-rs serialises it.
    pub passkey: serde_json::Value,
    /// When registered.
    pub created_at: OffsetDateTime,
    /// Last successful use.
    pub last_used_at: Option<OffsetDateTime>,
}

/// A WebAuthn ceremony in flight.
#[derive(Debug, Clone, PartialEq)]
pub struct Ceremony {
    /// Random id, handed to the browser.
    pub id: String,
    /// Who it is for, when known.
    pub human: Option<HumanId>,
    /// `register`, `login` or `approve:<apr_…>:<verdict>`.
    pub purpose: String,
    /// webauthn-rs' serialised state, plus what Surety binds to it.
    pub state: serde_json::Value,
    /// When it stops being usable.
    pub expires_at: OffsetDateTime,
}

/// The audit log's Merkle tree (RFC 9162). Leaves are appended with their events, in the
/// same transaction ([`AuditStore::append_events`] and every store method that records
/// events); these read it.
#[async_trait]
pub trait AuditTreeStore {
    /// The number of leaves (events) in the tree.
    async fn tree_size(&self) -> Result<u64>;
    /// The stored perfect-subtree nodes at `positions` (see
    /// [`surety_core::merkle::wanted`]); absent ones are left out.
    async fn tree_nodes(&self, positions: &[(u8, u64)]) -> Result<surety_core::merkle::NodeMap>;
    /// The events that are leaves `[start, end)`, in leaf order, with their leaf index.
    async fn leaves(&self, start: u64, end: u64) -> Result<Vec<(u64, NewEvent)>>;
    /// Stores a signed checkpoint; `false` if one of that size exists (another node made it).
    async fn save_checkpoint(&self, checkpoint: &StoredCheckpoint) -> Result<bool>;
    /// The checkpoint of the largest size.
    async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>>;
    /// Checkpoints of sizes in `(after, up_to]`, smallest first, at most `limit`.
    async fn checkpoints(
        &self,
        after: u64,
        up_to: u64,
        limit: u32,
    ) -> Result<Vec<StoredCheckpoint>>;
}

/// A signed checkpoint of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    /// Tree size.
    pub size: u64,
    /// Root of that tree.
    pub root: surety_core::merkle::Hash,
    /// The C2SP signed note.
    pub note: String,
    /// When made.
    pub created_at: OffsetDateTime,
}

/// Approval requests and their votes.
#[async_trait]
pub trait ApprovalStore {
    /// Records a new request: the agent must be active, the grant must exist, and fewer than
    /// `max_waiting` of the agent's requests may be waiting (counted under the agent's lock)
    /// — otherwise [`StoreError::Conflict`].
    async fn create_approval(
        &self,
        approval: &Approval,
        max_waiting: u32,
        events: &[NewEvent],
    ) -> Result<()>;
    /// One request.
    async fn get_approval(&self, id: ApprovalId) -> Result<Option<Approval>>;
    /// The request an `auth_req_id` (by its hash) names.
    async fn find_approval(&self, auth_req_hash: &str) -> Result<Option<Approval>>;
    /// Requests, newest first.
    async fn list_approvals(
        &self,
        filter: &ApprovalFilter,
        page: &PageRequest,
    ) -> Result<Page<Approval>>;
    /// How many of `agent`'s requests are waiting (pending and unexpired) at `now`, counting
    /// no further than `up_to` (so the check costs the same however many there are).
    async fn count_waiting_approvals(
        &self,
        agent: AgentId,
        now: OffsetDateTime,
        up_to: u32,
    ) -> Result<u64>;
    /// The votes cast on a request.
    async fn approval_votes(&self, id: ApprovalId) -> Result<Vec<Vote>>;
    /// Casts `vote` on a pending request, holding the request so votes are counted one at a
    /// time; `outcome` sees every vote including this one. A request no longer pending (by
    /// state or time) → [`StoreError::Stale`]; a second vote of one approver →
    /// [`StoreError::Conflict`]. Returns the request as it now stands.
    async fn vote(&self, vote: &Vote, outcome: VoteOutcome<'_>) -> Result<Approval>;
    /// Applies a decided change; [`StoreError::Stale`] if the request moved meanwhile.
    async fn transition_approval(
        &self,
        change: &ApprovalTransition,
        events: &[NewEvent],
    ) -> Result<()>;
    /// Records a poll and the interval the client must keep from now on — if no other poll was
    /// recorded since `previous` (the last one the caller saw). `false`: another came first.
    async fn record_poll(
        &self,
        id: ApprovalId,
        previous: Option<OffsetDateTime>,
        at: OffsetDateTime,
        interval: u32,
    ) -> Result<bool>;
    /// Cancels every open (pending, approved or redeemed, unexpired) request in `scope`,
    /// with one event each. Returns how many.
    async fn cancel_approvals(
        &self,
        scope: ApprovalScope,
        at: OffsetDateTime,
        event: &(dyn for<'x> Fn(&'x Approval) -> NewEvent + Send + Sync),
    ) -> Result<u64>;
    /// Sets or clears an agent's CIBA ping notification endpoint.
    async fn set_notification_endpoint(
        &self,
        agent: AgentId,
        url: Option<&str>,
        events: &[NewEvent],
    ) -> Result<()>;
    /// An agent's CIBA ping notification endpoint.
    async fn notification_endpoint(&self, agent: AgentId) -> Result<Option<String>>;
    /// The human with this e-mail address (a CIBA `login_hint`), ignoring case.
    async fn human_by_email(&self, email: &str) -> Result<Option<HumanId>>;
}

/// Passkeys, their enrollment links, WebAuthn ceremonies and web sessions.
#[async_trait]
pub trait PasskeyStore {
    /// Issues a one-time passkey enrollment link (stored as the code's hash).
    async fn issue_invite(&self, invite: &Enrollment, events: &[NewEvent]) -> Result<()>;
    /// The active human an unused, unexpired invite is for.
    async fn invited_human(&self, code_hash: &str, now: OffsetDateTime) -> Result<Option<HumanId>>;
    /// Uses the invite once and registers `passkey` for its human. Unknown, used or expired
    /// invite → [`StoreError::NotFound`].
    async fn register_passkey(
        &self,
        code_hash: &str,
        passkey: &PasskeyRecord,
        events: &[NewEvent],
    ) -> Result<()>;
    /// A human's passkeys.
    async fn list_passkeys(&self, human: HumanId) -> Result<Vec<PasskeyRecord>>;
    /// Stores a passkey's updated counter after a use.
    async fn touch_passkey(
        &self,
        cred_id: &str,
        passkey: &serde_json::Value,
        at: OffsetDateTime,
    ) -> Result<()>;
    /// Stores a ceremony.
    async fn put_ceremony(&self, ceremony: &Ceremony) -> Result<()>;
    /// Takes a ceremony out, once; expired ones are not returned.
    async fn take_ceremony(&self, id: &str, now: OffsetDateTime) -> Result<Option<Ceremony>>;
    /// Starts a web session (stored as the cookie's hash).
    async fn create_ui_session(
        &self,
        token_hash: &str,
        human: HumanId,
        at: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<()>;
    /// The human of a live session.
    async fn ui_session(&self, token_hash: &str, now: OffsetDateTime) -> Result<Option<HumanId>>;
    /// Ends a session.
    async fn end_ui_session(&self, token_hash: &str) -> Result<()>;
    /// Removes one of `human`'s passkeys and ends all their web sessions. Unknown →
    /// [`StoreError::NotFound`].
    async fn revoke_passkey(
        &self,
        human: HumanId,
        cred_id: &str,
        events: &[NewEvent],
    ) -> Result<()>;
    /// Ends every web session of `human`.
    async fn end_ui_sessions_of(&self, human: HumanId) -> Result<()>;
}

/// The `LISTEN`/`NOTIFY` channel on which PostgreSQL nodes announce changes others cache.
pub const CHANGES_CHANNEL: &str = "surety_changes";

/// A change that nodes keep a cache of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A policy set was applied.
    PolicySet,
    /// The organisation's signing keys changed.
    SigningKeys,
    /// The feed lost its connection: anything may have changed meanwhile.
    Missed,
}

impl Change {
    /// The `NOTIFY` payload.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PolicySet => "policy_set",
            Self::SigningKeys => "signing_keys",
            Self::Missed => "missed",
        }
    }

    /// A payload read back.
    #[must_use]
    pub fn parse(payload: &str) -> Option<Self> {
        match payload {
            "policy_set" => Some(Self::PolicySet),
            "signing_keys" => Some(Self::SigningKeys),
            _ => None,
        }
    }
}

/// Changes announced by any node, as they commit.
#[async_trait]
pub trait ChangeFeed: Send {
    /// The next change (waits for it).
    async fn next(&mut self) -> Change;
}

#[async_trait]
pub trait Store:
    OrgStore
    + HumanStore
    + EnrollmentStore
    + AgentStore
    + KeyStore
    + TokenStore
    + ReplayStore
    + AuditStore
    + GrantStore
    + SigningKeyStore
    + ResourceServerStore
    + CredentialStore
    + PolicyStore
    + ApprovalStore
    + PasskeyStore
    + AuditTreeStore
    + InventoryStore
    + FederationStore
    + StreamStore
    + Debug
    + Send
    + Sync
{
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    /// Round-trips to the database.
    async fn ping(&self) -> Result<()>;
    /// Closes every connection.
    async fn close(&self);
    /// The changes other nodes announce, for a backend shared by several nodes (PostgreSQL);
    /// `None` when this node is the only one (SQLite).
    async fn changes(&self) -> Result<Option<Box<dyn ChangeFeed>>>;
}

/// What the inventory reads.
#[async_trait]
pub trait InventoryStore {
    /// One page of agents matching `filter` (in id order) with their owner, keys, grants,
    /// scope usage, and activity since `recent_since`.
    async fn agent_facts(
        &self,
        filter: &AgentFilter,
        page: &PageRequest,
        recent_since: OffsetDateTime,
    ) -> Result<Page<AgentFacts>>;
}

/// Connection settings.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// `sqlite://path` or `postgres://…`.
    pub url: String,
    /// Most connections (readers, for SQLite, which always has one writer).
    pub max_connections: u32,
}

/// Opens (creating if needed) and migrates the database named by `options.url`.
pub async fn open(options: &StoreOptions) -> Result<Arc<dyn Store>> {
    let url = options.url.as_str();
    if url.starts_with("sqlite:") {
        Ok(Arc::new(
            SqliteStore::open(url, options.max_connections).await?,
        ))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PgStore::open(url, options.max_connections).await?))
    } else {
        Err(StoreError::Config(format!(
            "unsupported database URL scheme in `{}`: use sqlite:// or postgres://",
            error::redact_url(url)
        )))
    }
}
