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

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use surety_core::agent::{Agent, AgentStatus};
use surety_core::audit::{AuditEvent, AuditFilter, AuditScope, NewEvent};
use surety_core::human::{Human, HumanStatus, Role};
use surety_core::id::{AgentId, HumanId, PrincipalId};
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
}

/// Single-use values (`jti` of DPoP proofs and assertions), shared by every node.
#[async_trait]
pub trait ReplayStore {
    /// Records `key` until `until`; [`StoreError::Replay`] if it is already recorded and
    /// not expired at `now`.
    async fn remember(&self, key: &str, until: OffsetDateTime, now: OffsetDateTime) -> Result<()>;
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

/// Everything Surety stores.
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
