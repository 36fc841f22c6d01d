//! Federation peers, federation grants, the tokens minted under them, and agent cards.

use async_trait::async_trait;
use sqlx::{AssertSqlSafe, QueryBuilder};
use surety_core::audit::NewEvent;
use surety_core::federation::{FederationGrant, FederationGrantStatus, Pattern};
use surety_core::id::{AgentId, FederationGrantId};
use surety_core::scope::ScopeSet;
use time::OffsetDateTime;

use super::tx::{insert_events, lock_active_human};
use super::{Backend, Db};
use crate::dbtime::DbTime;
use crate::error::unique_as_conflict;
use crate::rows::to_json_text;
use crate::{FederatedTokenRecord, FederationStore, PeerRecord, Result, StoreError};

const PEER_COLUMNS: &str = "issuer, name, source, metadata_url, jwks, introspection_endpoint, \
                            fetched_at, created_by, created_at";
const GRANT_COLUMNS: &str = "id, peer, agents, principals, scopes, resources, constraints, \
                             status, expires_at, created_by, created_at";

#[derive(sqlx::FromRow)]
struct PeerRow {
    issuer: String,
    name: String,
    source: String,
    metadata_url: Option<String>,
    jwks: String,
    introspection_endpoint: Option<String>,
    fetched_at: Option<DbTime>,
    created_by: String,
    created_at: DbTime,
}

impl TryFrom<PeerRow> for PeerRecord {
    type Error = StoreError;
    fn try_from(r: PeerRow) -> Result<Self> {
        Ok(Self {
            issuer: r.issuer,
            name: r.name,
            source: r.source,
            metadata_url: r.metadata_url,
            jwks: serde_json::from_str(&r.jwks).map_err(StoreError::corrupt)?,
            introspection_endpoint: r.introspection_endpoint,
            fetched_at: r.fetched_at.map(|t| t.0),
            created_by: r.created_by.parse().map_err(StoreError::corrupt)?,
            created_at: r.created_at.0,
        })
    }
}

#[derive(sqlx::FromRow)]
struct GrantRow {
    id: String,
    peer: String,
    agents: String,
    principals: String,
    scopes: String,
    resources: String,
    constraints: String,
    status: String,
    expires_at: DbTime,
    created_by: String,
    created_at: DbTime,
}

impl TryFrom<GrantRow> for FederationGrant {
    type Error = StoreError;
    fn try_from(r: GrantRow) -> Result<Self> {
        let scopes: Vec<String> = serde_json::from_str(&r.scopes).map_err(StoreError::corrupt)?;
        Ok(Self {
            id: r.id.parse().map_err(StoreError::corrupt)?,
            peer: r.peer,
            agents: Pattern::parse("agents", &r.agents).map_err(StoreError::corrupt)?,
            principals: Pattern::parse("principals", &r.principals).map_err(StoreError::corrupt)?,
            scopes: ScopeSet::from_tokens("scopes", scopes).map_err(StoreError::corrupt)?,
            resources: serde_json::from_str(&r.resources).map_err(StoreError::corrupt)?,
            constraints: serde_json::from_str(&r.constraints).map_err(StoreError::corrupt)?,
            status: r.status.parse().map_err(StoreError::corrupt)?,
            expires_at: r.expires_at.0,
            created_by: r.created_by.parse().map_err(StoreError::corrupt)?,
            created_at: r.created_at.0,
        })
    }
}

#[derive(sqlx::FromRow)]
struct TokenRow {
    jti: String,
    peer: String,
    grant_id: String,
    assertion_jti: String,
    assertion: String,
    expires_at: DbTime,
}

impl TryFrom<TokenRow> for FederatedTokenRecord {
    type Error = StoreError;
    fn try_from(r: TokenRow) -> Result<Self> {
        Ok(Self {
            jti: r.jti,
            peer: r.peer,
            grant: r.grant_id.parse().map_err(StoreError::corrupt)?,
            assertion_jti: r.assertion_jti,
            assertion: r.assertion,
            expires_at: r.expires_at.0,
        })
    }
}

#[async_trait]
impl FederationStore for Backend {
    async fn add_peer(&self, p: &PeerRecord, events: &[NewEvent]) -> Result<()> {
        let mut tx = self.writer().begin().await?;
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO federation_peers ({PEER_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        )))
        .bind(&p.issuer)
        .bind(&p.name)
        .bind(&p.source)
        .bind(&p.metadata_url)
        .bind(to_json_text(&p.jwks)?)
        .bind(&p.introspection_endpoint)
        .bind(p.fetched_at.map(DbTime::from))
        .bind(p.created_by.to_string())
        .bind(DbTime::from(p.created_at))
        .execute(&mut *tx)
        .await
        .map_err(unique_as_conflict(|| {
            format!(
                "a peer with issuer `{}` or name `{}` is already trusted",
                p.issuer, p.name
            )
        }))?;
        insert_events(&mut tx, events).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn update_peer_keys(
        &self,
        issuer: &str,
        jwks: &serde_json::Value,
        introspection_endpoint: Option<&str>,
        fetched_at: OffsetDateTime,
        events: &[NewEvent],
    ) -> Result<()> {
        let mut tx = self.writer().begin().await?;
        let done = sqlx::query(
            "UPDATE federation_peers SET jwks = $1, introspection_endpoint = $2, fetched_at = $3 \
             WHERE issuer = $4 AND source = 'metadata'",
        )
        .bind(to_json_text(jwks)?)
        .bind(introspection_endpoint)
        .bind(DbTime::from(fetched_at))
        .bind(issuer)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!(
                "no peer `{issuer}` with fetched keys"
            )));
        }
        insert_events(&mut tx, events).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn get_peer(&self, issuer: &str) -> Result<Option<PeerRecord>> {
        let row: Option<PeerRow> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {PEER_COLUMNS} FROM federation_peers WHERE issuer = $1"
        )))
        .bind(issuer)
        .fetch_optional(self.reader())
        .await?;
        row.map(PeerRecord::try_from).transpose()
    }

    async fn list_peers(&self) -> Result<Vec<PeerRecord>> {
        let rows: Vec<PeerRow> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {PEER_COLUMNS} FROM federation_peers ORDER BY name"
        )))
        .fetch_all(self.reader())
        .await?;
        rows.into_iter().map(PeerRecord::try_from).collect()
    }

    async fn remove_peer(
        &self,
        issuer: &str,
        at: OffsetDateTime,
        events: &[NewEvent],
    ) -> Result<bool> {
        let mut tx = self.writer().begin().await?;
        let done = sqlx::query("DELETE FROM federation_peers WHERE issuer = $1")
            .bind(issuer)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE federation_grants SET status = 'revoked', revoked_at = $1 \
             WHERE peer = $2 AND status = 'active'",
        )
        .bind(DbTime::from(at))
        .bind(issuer)
        .execute(&mut *tx)
        .await?;
        insert_events(&mut tx, events).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn create_federation_grant(
        &self,
        g: &FederationGrant,
        events: &[NewEvent],
    ) -> Result<()> {
        let mut tx = self.writer().begin().await?;
        lock_active_human(&mut tx, g.created_by, "creator").await?;
        let peer: Option<(String,)> =
            sqlx::query_as("SELECT issuer FROM federation_peers WHERE issuer = $1")
                .bind(&g.peer)
                .fetch_optional(&mut *tx)
                .await?;
        if peer.is_none() {
            return Err(StoreError::NotFound(format!(
                "`{}` is not a trusted peer",
                g.peer
            )));
        }
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO federation_grants ({GRANT_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        )))
        .bind(g.id.to_string())
        .bind(&g.peer)
        .bind(g.agents.as_str())
        .bind(g.principals.as_str())
        .bind(to_json_text(&g.scopes.to_vec())?)
        .bind(to_json_text(&g.resources)?)
        .bind(to_json_text(&g.constraints)?)
        .bind(g.status.as_str())
        .bind(DbTime::from(g.expires_at))
        .bind(g.created_by.to_string())
        .bind(DbTime::from(g.created_at))
        .execute(&mut *tx)
        .await?;
        insert_events(&mut tx, events).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn get_federation_grant(&self, id: FederationGrantId) -> Result<Option<FederationGrant>> {
        let row: Option<GrantRow> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {GRANT_COLUMNS} FROM federation_grants WHERE id = $1"
        )))
        .bind(id.to_string())
        .fetch_optional(self.reader())
        .await?;
        row.map(FederationGrant::try_from).transpose()
    }

    async fn list_federation_grants(&self, peer: Option<&str>) -> Result<Vec<FederationGrant>> {
        let mut q =
            QueryBuilder::<Db>::new(format!("SELECT {GRANT_COLUMNS} FROM federation_grants"));
        if let Some(peer) = peer {
            q.push(" WHERE peer = ").push_bind(peer.to_owned());
        }
        q.push(" ORDER BY id DESC");
        let rows: Vec<GrantRow> = q.build_query_as().fetch_all(self.reader()).await?;
        rows.into_iter().map(FederationGrant::try_from).collect()
    }

    async fn revoke_federation_grant(
        &self,
        id: FederationGrantId,
        at: OffsetDateTime,
        events: &[NewEvent],
    ) -> Result<bool> {
        let mut tx = self.writer().begin().await?;
        let done = sqlx::query(
            "UPDATE federation_grants SET status = $1, revoked_at = $2 \
             WHERE id = $3 AND status = 'active'",
        )
        .bind(FederationGrantStatus::Revoked.as_str())
        .bind(DbTime::from(at))
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        insert_events(&mut tx, events).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn record_federated_token(
        &self,
        t: &FederatedTokenRecord,
        events: &[NewEvent],
    ) -> Result<()> {
        let mut tx = self.writer().begin().await?;
        sqlx::query(
            "INSERT INTO federated_tokens (jti, peer, grant_id, assertion_jti, assertion, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&t.jti)
        .bind(&t.peer)
        .bind(t.grant.to_string())
        .bind(&t.assertion_jti)
        .bind(&t.assertion)
        .bind(DbTime::from(t.expires_at))
        .execute(&mut *tx)
        .await?;
        // Rows of long-expired tokens are of no use: they go as new ones come (a token
        // lives minutes, so one that expired a day before this one's end is long gone).
        sqlx::query("DELETE FROM federated_tokens WHERE expires_at < $1")
            .bind(DbTime::from(t.expires_at - time::Duration::days(1)))
            .execute(&mut *tx)
            .await?;
        insert_events(&mut tx, events).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn live_federated_assertions(
        &self,
        now: OffsetDateTime,
    ) -> Result<Vec<FederatedTokenRecord>> {
        let rows: Vec<TokenRow> = sqlx::query_as(
            "SELECT f.jti, f.peer, f.grant_id, f.assertion_jti, f.assertion, f.expires_at \
             FROM federated_tokens f \
             WHERE f.expires_at > $1 \
               AND NOT EXISTS (SELECT 1 FROM revoked_tokens r WHERE r.jti = f.jti) \
             ORDER BY f.peer, f.assertion_jti, f.expires_at DESC",
        )
        .bind(DbTime::from(now))
        .fetch_all(self.reader())
        .await?;
        let mut out: Vec<FederatedTokenRecord> = Vec::new();
        for row in rows {
            let record = FederatedTokenRecord::try_from(row)?;
            let same = |r: &FederatedTokenRecord| {
                r.peer == record.peer && r.assertion_jti == record.assertion_jti
            };
            if !out.last().is_some_and(same) {
                out.push(record);
            }
        }
        Ok(out)
    }

    async fn revoke_federated_tokens(
        &self,
        peer: &str,
        assertion_jti: &str,
        at: OffsetDateTime,
        events: &[NewEvent],
    ) -> Result<u64> {
        let mut tx = self.writer().begin().await?;
        let done = sqlx::query(
            "INSERT INTO revoked_tokens (jti, revoked_at, expires_at) \
             SELECT jti, $1, expires_at FROM federated_tokens \
             WHERE peer = $2 AND assertion_jti = $3 \
             ON CONFLICT (jti) DO NOTHING",
        )
        .bind(DbTime::from(at))
        .bind(peer)
        .bind(assertion_jti)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() > 0 {
            insert_events(&mut tx, events).await?;
        }
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    async fn token_revoked_at(&self, jti: &str) -> Result<Option<OffsetDateTime>> {
        let row: Option<(DbTime,)> =
            sqlx::query_as("SELECT revoked_at FROM revoked_tokens WHERE jti = $1")
                .bind(jti)
                .fetch_optional(self.reader())
                .await?;
        Ok(row.map(|(t,)| t.0))
    }

    async fn put_agent_card(
        &self,
        agent: AgentId,
        card: &serde_json::Value,
        at: OffsetDateTime,
        events: &[NewEvent],
    ) -> Result<()> {
        let mut tx = self.writer().begin().await?;
        sqlx::query(
            "INSERT INTO agent_cards (agent_id, card, published_at) VALUES ($1, $2, $3) \
             ON CONFLICT (agent_id) DO UPDATE SET card = excluded.card, \
             published_at = excluded.published_at",
        )
        .bind(agent.to_string())
        .bind(to_json_text(card)?)
        .bind(DbTime::from(at))
        .execute(&mut *tx)
        .await?;
        insert_events(&mut tx, events).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn agent_card(&self, agent: AgentId) -> Result<Option<serde_json::Value>> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT card FROM agent_cards WHERE agent_id = $1")
                .bind(agent.to_string())
                .fetch_optional(self.reader())
                .await?;
        row.map(|(c,)| serde_json::from_str(&c).map_err(StoreError::corrupt))
            .transpose()
    }

    async fn delete_agent_card(&self, agent: AgentId, events: &[NewEvent]) -> Result<bool> {
        let mut tx = self.writer().begin().await?;
        let done = sqlx::query("DELETE FROM agent_cards WHERE agent_id = $1")
            .bind(agent.to_string())
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        insert_events(&mut tx, events).await?;
        tx.commit().await?;
        Ok(true)
    }
}
