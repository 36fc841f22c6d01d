/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A referenced row does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The change would break a uniqueness or state rule.
    #[error("{0}")]
    Conflict(String),
    /// The row is no longer in the state the change was decided on.
    #[error("the record changed concurrently; read it again")]
    Stale,
    /// Bootstrap on a deployment that already has humans.
    #[error("this deployment is already initialized")]
    AlreadyInitialized,
    /// A single-use value was seen before.
    #[error("value already used")]
    Replay,
    /// An input the caller should have validated (a malformed cursor, say).
    #[error("{0}")]
    Invalid(String),
    /// Bad connection settings.
    #[error("{0}")]
    Config(String),
    /// A stored row could not be read back.
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A migration failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    /// Whether the database could not be reached (as opposed to refusing the operation).
    #[must_use]
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Self::Database(
                sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_)
            )
        )
    }

    /// Whether the transaction lost a deadlock or serialisation conflict (PostgreSQL
    /// `40P01`, `40001`) and may simply be run again.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Database(sqlx::Error::Database(db))
            if matches!(db.code().as_deref(), Some("40P01" | "40001")))
    }

    pub(crate) fn corrupt(what: impl std::fmt::Display) -> Self {
        Self::Corrupt(what.to_string())
    }
}

/// Whether `err` is a unique-constraint violation.
pub(crate) fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// Maps a unique violation to a [`StoreError::Conflict`] with `message`.
pub(crate) fn unique_as_conflict(
    message: impl FnOnce() -> String,
) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |err| {
        if is_unique_violation(&err) {
            StoreError::Conflict(message())
        } else {
            StoreError::Database(err)
        }
    }
}

/// A database URL with any password replaced, for messages and logs.
#[must_use]
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => url.rsplit('@').next().unwrap_or_default().to_owned(),
    }
}
