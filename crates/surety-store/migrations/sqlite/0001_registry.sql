-- Registry, admin sessions, single-use values and the audit log (SQLite).
-- Timestamps are TEXT in one fixed-width UTC form, so text order is time order.
-- JSON values are TEXT, stored exactly as written.

CREATE TABLE server_secrets (
    name       TEXT PRIMARY KEY,
    value      BLOB NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE humans (
    id           TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    email        TEXT NOT NULL,
    role         TEXT NOT NULL CHECK (role IN ('admin', 'member')),
    status       TEXT NOT NULL CHECK (status IN ('active', 'deactivated')),
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    CONSTRAINT humans_email_key UNIQUE (email)
);

CREATE TABLE agents (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    name_key      TEXT NOT NULL,
    owner_id      TEXT NOT NULL REFERENCES humans (id),
    purpose       TEXT NOT NULL,
    environment   TEXT NOT NULL,
    labels        TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'revoked', 'retired')),
    status_reason TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    last_seen_at  TEXT,
    CONSTRAINT agents_owner_name_key UNIQUE (owner_id, name_key)
);
CREATE INDEX agents_owner_idx ON agents (owner_id, id);
CREATE INDEX agents_status_idx ON agents (status, id);

-- Keys of every principal; a thumbprint is unique for ever, so a revoked key never returns.
CREATE TABLE public_keys (
    kid               TEXT PRIMARY KEY,
    holder_id         TEXT NOT NULL,
    alg               TEXT NOT NULL,
    jwk               TEXT NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('active', 'retired', 'revoked')),
    created_at        TEXT NOT NULL,
    status_changed_at TEXT
);
CREATE INDEX public_keys_holder_idx ON public_keys (holder_id, created_at);

CREATE TABLE enrollment_codes (
    code_hash  TEXT PRIMARY KEY,
    human_id   TEXT NOT NULL REFERENCES humans (id),
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT
);
CREATE INDEX enrollment_codes_human_idx ON enrollment_codes (human_id);

CREATE TABLE access_tokens (
    token_hash TEXT PRIMARY KEY,
    human_id   TEXT NOT NULL REFERENCES humans (id),
    jkt        TEXT NOT NULL,
    scope      TEXT NOT NULL,
    issued_at  TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX access_tokens_expiry_idx ON access_tokens (expires_at);

CREATE TABLE replay_cache (
    key        TEXT PRIMARY KEY,
    expires_at TEXT NOT NULL
);
CREATE INDEX replay_cache_expiry_idx ON replay_cache (expires_at);

CREATE TABLE audit_events (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    id       TEXT NOT NULL UNIQUE,
    version  INTEGER NOT NULL,
    time     TEXT NOT NULL,
    kind     TEXT NOT NULL,
    actor    TEXT NOT NULL,
    target   TEXT NOT NULL,
    agent_id TEXT,
    human_id TEXT,
    details  TEXT NOT NULL
);
CREATE INDEX audit_events_agent_idx ON audit_events (agent_id, seq);
CREATE INDEX audit_events_human_idx ON audit_events (human_id, seq);
CREATE INDEX audit_events_actor_idx ON audit_events (actor, seq);
CREATE INDEX audit_events_target_idx ON audit_events (target, seq);
CREATE INDEX audit_events_kind_idx ON audit_events (kind, seq);
CREATE INDEX audit_events_time_idx ON audit_events (time);
