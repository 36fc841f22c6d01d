-- The audit log as an RFC 9162 Merkle tree (PostgreSQL): each event is a leaf, numbered from
-- 0 in commit order, and every perfect subtree hash is stored as it completes, so that roots
-- and proofs are assembled from O(log n) rows. Events recorded before this migration get
-- their leaves when the store opens.
ALTER TABLE audit_events ADD COLUMN leaf_index BIGINT;
CREATE UNIQUE INDEX audit_events_leaf_idx ON audit_events (leaf_index);

CREATE TABLE audit_tree (
    level SMALLINT NOT NULL CHECK (level >= 0 AND level < 64),
    idx   BIGINT NOT NULL CHECK (idx >= 0),
    hash  BYTEA NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, idx)
);
