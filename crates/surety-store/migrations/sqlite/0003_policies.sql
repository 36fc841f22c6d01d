-- Policy sets: every applied set is kept, numbered; the newest is the one in force.
-- A rollback applies an older set again as a new version (SQLite).
CREATE TABLE policy_sets (
    version    INTEGER PRIMARY KEY,
    catalog    TEXT NOT NULL,
    policies   TEXT NOT NULL,
    note       TEXT,
    created_by TEXT NOT NULL REFERENCES humans (id),
    created_at TEXT NOT NULL
);
