-- Signed checkpoints of the audit log's tree (PostgreSQL): made every `checkpoint_every`
-- events or `checkpoint_interval`, and on demand; each names the one before it.
CREATE TABLE audit_checkpoints (
    size       BIGINT PRIMARY KEY CHECK (size >= 0),
    root       BYTEA NOT NULL CHECK (length(root) = 32),
    note       TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
