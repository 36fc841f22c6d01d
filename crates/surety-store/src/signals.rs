//! Storage of Shared Signals streams.

use async_trait::async_trait;
use surety_core::audit::NewEvent;
use surety_core::id::ResourceServerId;
use time::OffsetDateTime;

use crate::Result;

/// A Shared Signals stream: a receiver and what it asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRecord {
    /// The stream id.
    pub id: String,
    /// The receiver: a registered resource server.
    pub receiver: ResourceServerId,
    /// Its audience: the events it may see concern tokens for it.
    pub audience: String,
    /// `push` (RFC 8935) or `poll` (RFC 8936).
    pub method: String,
    /// Where pushed events go.
    pub endpoint_url: Option<String>,
    /// The event types asked for.
    pub events: Vec<String>,
    /// Free text.
    pub description: Option<String>,
    /// `enabled`, `paused` or `disabled`.
    pub status: String,
    /// Why, when not enabled.
    pub reason: Option<String>,
    /// The audit-log leaf from which events are still to be delivered (acknowledged below).
    pub cursor: u64,
    /// When.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

/// Shared Signals streams.
#[async_trait]
pub trait StreamStore {
    /// Stores a new stream.
    async fn create_stream(&self, stream: &StreamRecord, events: &[NewEvent]) -> Result<()>;
    /// One stream.
    async fn get_stream(&self, id: &str) -> Result<Option<StreamRecord>>;
    /// Every stream (of `receiver`, when given).
    async fn list_streams(&self, receiver: Option<ResourceServerId>) -> Result<Vec<StreamRecord>>;
    /// Deletes a stream; `false` if unknown.
    async fn delete_stream(&self, id: &str, events: &[NewEvent]) -> Result<bool>;
    /// Sets a stream's status.
    async fn set_stream_status(
        &self,
        id: &str,
        status: &str,
        reason: Option<&str>,
        at: OffsetDateTime,
    ) -> Result<bool>;
    /// Moves a stream's cursor from `from` to `to`; `false` if it was no longer at `from`
    /// (another node delivered meanwhile).
    async fn advance_stream(
        &self,
        id: &str,
        from: u64,
        to: u64,
        at: OffsetDateTime,
    ) -> Result<bool>;
}
