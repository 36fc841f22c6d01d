//! The audit log's Merkle tree (RFC 9162): leaves appended in the transaction of the events
//! they hash, under the `Audit` lock, so that the tree always holds exactly the committed
//! events in commit order; and the nodes a root or proof needs, read in one query.

use async_trait::async_trait;
use sqlx::QueryBuilder;
use surety_core::audit::NewEvent;
use surety_core::merkle::{self, Hash, NodeMap};

use super::tx::Tx;
use super::{Backend, Db};
use crate::dbtime::DbTime;
use crate::rows::EventRow;
use crate::{AuditTreeStore, Result, Serial, StoreError, StoredCheckpoint};

fn to_hash(bytes: Vec<u8>) -> Result<Hash> {
    bytes
        .try_into()
        .map_err(|_| StoreError::corrupt("an audit tree node is not 32 bytes"))
}

fn level_of(level: i16) -> Result<u8> {
    u8::try_from(level).map_err(StoreError::corrupt)
}

/// Fetches the nodes at `positions` through `executor`.
async fn fetch<'e, E>(executor: E, positions: &[(u8, u64)]) -> Result<NodeMap>
where
    E: sqlx::Executor<'e, Database = Db>,
{
    let mut nodes = NodeMap::default();
    if positions.is_empty() {
        return Ok(nodes);
    }
    let mut q: QueryBuilder<Db> =
        QueryBuilder::new("SELECT level, idx, hash FROM audit_tree WHERE ");
    for (i, (level, index)) in positions.iter().enumerate() {
        if i > 0 {
            q.push(" OR ");
        }
        q.push("(level = ")
            .push_bind(i16::from(*level))
            .push(" AND idx = ")
            .push_bind(i64::try_from(*index).map_err(StoreError::corrupt)?)
            .push(")");
    }
    let rows: Vec<(i16, i64, Vec<u8>)> = q.build_query_as().fetch_all(executor).await?;
    for (level, index, hash) in rows {
        let index = u64::try_from(index).map_err(StoreError::corrupt)?;
        nodes.0.insert((level_of(level)?, index), to_hash(hash)?);
    }
    Ok(nodes)
}

/// The perfect subtrees that make up the first `size` leaves: what the next append needs.
fn frontier(size: u64) -> Vec<(u8, u64)> {
    (0..64u8)
        .filter(|l| (size >> l) & 1 == 1)
        .map(|l| (l, (size >> l) - 1))
        .collect()
}

async fn size_tx(tx: &mut Tx) -> Result<u64> {
    let (max,): (Option<i64>,) = sqlx::query_as("SELECT MAX(idx) FROM audit_tree WHERE level = 0")
        .fetch_one(&mut **tx)
        .await?;
    Ok(max.map_or(0, |m| u64::try_from(m + 1).unwrap_or(0)))
}

/// Stores tree nodes `(level, index, hash)`, in one statement.
async fn insert_nodes(tx: &mut Tx, nodes: &[(u8, u64, Hash)]) -> Result<()> {
    let mut q: QueryBuilder<Db> = QueryBuilder::new("INSERT INTO audit_tree (level, idx, hash) ");
    q.push_values(nodes, |mut row, (level, idx, hash)| {
        row.push_bind(i16::from(*level))
            .push_bind(i64::try_from(*idx).unwrap_or(i64::MAX))
            .push_bind(hash.to_vec());
    });
    q.build().execute(&mut **tx).await?;
    Ok(())
}

/// Appends leaves within a transaction that holds the `Audit` lock: the tree's frontier is
/// read once, then each leaf stores the nodes it completes.
pub(super) struct Appender {
    size: u64,
    nodes: NodeMap,
}

impl Appender {
    pub(super) async fn begin(tx: &mut Tx) -> Result<Self> {
        let size = size_tx(tx).await?;
        let nodes = fetch(&mut **tx, &frontier(size)).await?;
        Ok(Self { size, nodes })
    }

    /// The index the next leaf will have.
    pub(super) fn next_leaf(&self) -> Result<i64> {
        i64::try_from(self.size).map_err(StoreError::corrupt)
    }

    /// Appends `event` as the next leaf.
    pub(super) async fn push(&mut self, tx: &mut Tx, event: &NewEvent) -> Result<()> {
        let leaf = merkle::leaf_hash(&event.leaf_entry());
        let completed = merkle::completed_nodes(&self.nodes, self.size, leaf)
            .map_err(|e| StoreError::corrupt(e.to_string()))?;
        insert_nodes(tx, &completed).await?;
        for (level, idx, hash) in completed {
            self.nodes.0.insert((level, idx), hash);
        }
        self.size += 1;
        Ok(())
    }
}

/// Gives leaves to events recorded before the tree existed, oldest first, a batch per
/// transaction. Run when the store opens.
pub(super) async fn backfill(backend: &Backend) -> Result<u64> {
    let mut done = 0;
    loop {
        let mut tx = backend.writer().begin().await?;
        super::serialize(&mut tx, Serial::Audit).await?;
        let rows: Vec<EventRow> = sqlx::query_as(
            "SELECT seq, id, time, kind, actor, target, agent_id, human_id, details \
             FROM audit_events WHERE leaf_index IS NULL ORDER BY seq LIMIT 500",
        )
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            return Ok(done);
        }
        let events: Vec<NewEvent> = rows
            .into_iter()
            .map(|r| surety_core::audit::AuditEvent::try_from(r).map(|e| e.event))
            .collect::<Result<_>>()?;
        let mut tree = Appender::begin(&mut tx).await?;
        for e in &events {
            sqlx::query("UPDATE audit_events SET leaf_index = $1 WHERE id = $2")
                .bind(tree.next_leaf()?)
                .bind(e.id.to_string())
                .execute(&mut *tx)
                .await?;
            tree.push(&mut tx, e).await?;
        }
        tx.commit().await?;
        done += events.len() as u64;
    }
}

#[async_trait]
impl AuditTreeStore for Backend {
    async fn tree_size(&self) -> Result<u64> {
        let (max,): (Option<i64>,) =
            sqlx::query_as("SELECT MAX(idx) FROM audit_tree WHERE level = 0")
                .fetch_one(self.reader())
                .await?;
        Ok(max.map_or(0, |m| u64::try_from(m + 1).unwrap_or(0)))
    }

    async fn tree_nodes(&self, positions: &[(u8, u64)]) -> Result<NodeMap> {
        fetch(self.reader(), positions).await
    }

    async fn leaves(&self, start: u64, end: u64) -> Result<Vec<(u64, NewEvent)>> {
        let bound =
            |n: u64| i64::try_from(n).map_err(|_| StoreError::Invalid("out of range".into()));
        let rows: Vec<(i64, EventRow)> = {
            #[derive(sqlx::FromRow)]
            struct LeafRow {
                leaf_index: i64,
                #[sqlx(flatten)]
                event: EventRow,
            }
            let rows: Vec<LeafRow> = sqlx::query_as(
                "SELECT leaf_index, seq, id, time, kind, actor, target, agent_id, human_id, details \
                 FROM audit_events WHERE leaf_index >= $1 AND leaf_index < $2 ORDER BY leaf_index",
            )
            .bind(bound(start)?)
            .bind(bound(end)?)
            .fetch_all(self.reader())
            .await?;
            rows.into_iter().map(|r| (r.leaf_index, r.event)).collect()
        };
        rows.into_iter()
            .map(|(i, r)| {
                let index = u64::try_from(i).map_err(StoreError::corrupt)?;
                Ok((index, surety_core::audit::AuditEvent::try_from(r)?.event))
            })
            .collect()
    }

    async fn save_checkpoint(&self, c: &StoredCheckpoint) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO audit_checkpoints (size, root, note, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (size) DO NOTHING",
        )
        .bind(i64::try_from(c.size).map_err(StoreError::corrupt)?)
        .bind(c.root.to_vec())
        .bind(&c.note)
        .bind(DbTime::from(c.created_at))
        .execute(self.writer())
        .await?
        .rows_affected();
        Ok(done == 1)
    }

    async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>> {
        let row: Option<CheckpointRow> = sqlx::query_as(
            "SELECT size, root, note, created_at FROM audit_checkpoints ORDER BY size DESC LIMIT 1",
        )
        .fetch_optional(self.reader())
        .await?;
        row.map(StoredCheckpoint::try_from).transpose()
    }

    async fn checkpoints(
        &self,
        after: u64,
        up_to: u64,
        limit: u32,
    ) -> Result<Vec<StoredCheckpoint>> {
        let rows: Vec<CheckpointRow> = sqlx::query_as(
            "SELECT size, root, note, created_at FROM audit_checkpoints \
             WHERE size > $1 AND size <= $2 ORDER BY size LIMIT $3",
        )
        .bind(i64::try_from(after).map_err(StoreError::corrupt)?)
        .bind(i64::try_from(up_to).map_err(StoreError::corrupt)?)
        .bind(i64::from(limit))
        .fetch_all(self.reader())
        .await?;
        rows.into_iter().map(StoredCheckpoint::try_from).collect()
    }
}

#[derive(sqlx::FromRow)]
struct CheckpointRow {
    size: i64,
    root: Vec<u8>,
    note: String,
    created_at: DbTime,
}

impl TryFrom<CheckpointRow> for StoredCheckpoint {
    type Error = StoreError;
    fn try_from(r: CheckpointRow) -> Result<Self> {
        Ok(Self {
            size: u64::try_from(r.size).map_err(StoreError::corrupt)?,
            root: to_hash(r.root)?,
            note: r.note,
            created_at: r.created_at.0,
        })
    }
}

impl Backend {
    /// Writes a prebuilt tree into an *empty* audit tree, unchecked: how a benchmark reaches
    /// sizes (10 million leaves) that appends would take hours to reach. Nodes come level by
    /// level; each is `(level, index, hash)`. Refuses a tree that already has leaves.
    pub async fn load_tree_for_benchmark(
        &self,
        nodes: impl Iterator<Item = (u8, u64, Hash)> + Send,
    ) -> Result<()> {
        let mut tx = self.writer().begin().await?;
        if size_tx(&mut tx).await? > 0 {
            return Err(StoreError::Invalid(
                "the audit tree is not empty: benchmarks load into a fresh store".into(),
            ));
        }
        let mut chunk = Vec::with_capacity(5000);
        let mut pending = 0usize;
        let mut nodes = nodes.peekable();
        while nodes.peek().is_some() {
            chunk.clear();
            chunk.extend(nodes.by_ref().take(5000));
            insert_nodes(&mut tx, &chunk).await?;
            pending += chunk.len();
            if pending >= 200_000 {
                tx.commit().await?;
                tx = self.writer().begin().await?;
                pending = 0;
            }
        }
        tx.commit().await?;
        Ok(())
    }
}
