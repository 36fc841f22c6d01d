-- Signed checkpoints of the audit log's tree (SQLite): made every `checkpoint_every` events
-- or `checkpoint_interval`, and on demand; each names the one before it.
CREATE TABLE audit_checkpoints (
    size       INTEGER PRIMARY KEY CHECK (size >= 0),
    root       BLOB NOT NULL CHECK (length(root) = 32),
    note       TEXT NOT NULL,
    created_at TEXT NOT NULL
);
