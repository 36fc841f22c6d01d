//! Helpers used inside write transactions, for both backends.

use sqlx::Transaction;
use surety_core::audit::{EVENT_SCHEMA_VERSION, NewEvent};
use surety_core::human::HumanStatus;
use surety_core::id::HumanId;
use surety_core::key::KeyRecord;

use super::Db;
use crate::dbtime::DbTime;
use crate::error::unique_as_conflict;
use crate::rows::to_json_text;
use crate::{Result, Serial, StoreError};

pub(super) type Tx = Transaction<'static, Db>;

/// Appends events as the last step of a transaction: the `audit` lock makes commit order
/// equal `seq` order, so a reader paging by `seq` never misses a late commit. Each event is
/// also the next leaf of the log's Merkle tree, numbered and hashed in this same transaction.
pub(super) async fn insert_events(tx: &mut Tx, events: &[NewEvent]) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    super::serialize(tx, Serial::Audit).await?;
    let mut tree = super::tree::Appender::begin(tx).await?;
    for e in events {
        sqlx::query(
            "INSERT INTO audit_events \
             (id, version, time, kind, actor, target, agent_id, human_id, details, leaf_index) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(e.id.to_string())
        .bind(i32::from(EVENT_SCHEMA_VERSION))
        .bind(DbTime::from(e.time))
        .bind(e.kind.as_str())
        .bind(e.actor.to_string())
        .bind(&e.target)
        .bind(e.agent.map(|a| a.to_string()))
        .bind(e.human.map(|h| h.to_string()))
        .bind(to_json_text(&e.details)?)
        .bind(tree.next_leaf()?)
        .execute(&mut **tx)
        .await?;
        tree.push(tx, e).await?;
    }
    Ok(())
}

/// Inserts a key; a thumbprint that was ever registered is a conflict.
pub(super) async fn insert_key(tx: &mut Tx, key: &KeyRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO public_keys (kid, holder_id, alg, jwk, status, created_at, status_changed_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&key.kid)
    .bind(key.holder.to_string())
    .bind(&key.alg)
    .bind(to_json_text(&key.jwk)?)
    .bind(key.status.as_str())
    .bind(DbTime::from(key.created_at))
    .bind(key.status_changed_at.map(DbTime::from))
    .execute(&mut **tx)
    .await
    .map_err(unique_as_conflict(|| {
        format!(
            "key `{}` is already registered; a key can be registered only once, even after it is revoked",
            key.kid
        )
    }))?;
    Ok(())
}

/// Holds `human`'s row in share mode until the transaction ends, provided the human is
/// active; otherwise [`StoreError::NotFound`] or [`StoreError::Conflict`] naming them as
/// `role`. A concurrent deactivation then waits for this transaction and sees what it
/// wrote (or this one sees the deactivation), so "an active agent has an active owner"
/// holds on every backend — while registrations for one owner still run side by side.
pub(super) async fn lock_active_human(tx: &mut Tx, human: HumanId, role: &str) -> Result<()> {
    match super::human_status_shared(tx, human).await? {
        Some(status) if status == HumanStatus::Active.as_str() => Ok(()),
        Some(status) => Err(StoreError::Conflict(format!(
            "{role} `{human}` is {status}"
        ))),
        None => Err(StoreError::NotFound(format!("{role} `{human}` not found"))),
    }
}

/// Compares the keys a statement changed with those the decision expected: any difference
/// means the keys moved since they were read.
pub(super) fn same_keys(mut changed: Vec<String>, expected: &[String]) -> Result<()> {
    let mut expected = expected.to_vec();
    changed.sort();
    expected.sort();
    if changed == expected {
        Ok(())
    } else {
        Err(StoreError::Stale)
    }
}
