-- Step-up approvals (CIBA requests), the approvers' signed votes, passkeys and the web UI's
-- sessions (SQLite).

CREATE TABLE approvals (
    id               TEXT PRIMARY KEY,
    -- SHA-256 of the opaque `auth_req_id`: the id itself is never stored.
    auth_req_hash    TEXT NOT NULL UNIQUE,
    client_id        TEXT NOT NULL REFERENCES agents (id),
    chain            TEXT NOT NULL,
    principal_id     TEXT NOT NULL REFERENCES humans (id),
    grant_id         TEXT NOT NULL REFERENCES grants (id),
    details          TEXT NOT NULL,
    binding_message  TEXT NOT NULL,
    reasons          TEXT NOT NULL,
    approvers        TEXT NOT NULL,
    required         INTEGER NOT NULL CHECK (required >= 1),
    status           TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'expired', 'cancelled', 'redeemed', 'consumed')),
    requested_by     TEXT,
    notify_endpoint  TEXT,
    notify_token     TEXT,
    -- Ping mode only: the id the ping must name (CIBA §10.2).
    notify_req_id    TEXT,
    poll_interval    INTEGER NOT NULL,
    last_polled_at   TEXT,
    token_jti        TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    expires_at       TEXT NOT NULL
);
CREATE INDEX approvals_client_idx ON approvals (client_id, status, expires_at);
CREATE INDEX approvals_grant_idx ON approvals (grant_id, status);

-- Who may answer which request: the inbox of each approver.
CREATE TABLE approval_approvers (
    approval_id TEXT NOT NULL REFERENCES approvals (id),
    human_id    TEXT NOT NULL REFERENCES humans (id),
    PRIMARY KEY (approval_id, human_id)
);
CREATE INDEX approval_approvers_human_idx ON approval_approvers (human_id, approval_id);

-- One answer per approver, with the signature that proves it.
CREATE TABLE approval_votes (
    approval_id TEXT NOT NULL REFERENCES approvals (id),
    approver_id TEXT NOT NULL REFERENCES humans (id),
    verdict     TEXT NOT NULL CHECK (verdict IN ('approve', 'deny')),
    method      TEXT NOT NULL CHECK (method IN ('passkey', 'device_key')),
    reason      TEXT,
    evidence    TEXT NOT NULL,
    at          TEXT NOT NULL,
    PRIMARY KEY (approval_id, approver_id)
);

-- Where an agent is pinged when a request it made is decided (CIBA ping mode).
CREATE TABLE agent_notification_endpoints (
    agent_id TEXT PRIMARY KEY REFERENCES agents (id),
    url      TEXT NOT NULL
);

CREATE TABLE passkeys (
    cred_id      TEXT PRIMARY KEY,
    human_id     TEXT NOT NULL REFERENCES humans (id),
    passkey      TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    last_used_at TEXT
);
CREATE INDEX passkeys_human_idx ON passkeys (human_id);

-- One-time passkey enrollment links, stored as hashes.
CREATE TABLE passkey_invites (
    code_hash  TEXT PRIMARY KEY,
    human_id   TEXT NOT NULL REFERENCES humans (id),
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT
);

-- WebAuthn ceremonies in flight (the server-side state webauthn-rs asks to keep).
CREATE TABLE webauthn_ceremonies (
    id         TEXT PRIMARY KEY,
    human_id   TEXT REFERENCES humans (id),
    purpose    TEXT NOT NULL,
    state      TEXT NOT NULL,
    expires_at TEXT NOT NULL
);

CREATE INDEX webauthn_ceremonies_expiry_idx ON webauthn_ceremonies (expires_at);

-- Web UI sessions, stored as hashes of the cookie.
CREATE TABLE ui_sessions (
    token_hash TEXT PRIMARY KEY,
    human_id   TEXT NOT NULL REFERENCES humans (id),
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX ui_sessions_expiry_idx ON ui_sessions (expires_at);
CREATE INDEX ui_sessions_human_idx ON ui_sessions (human_id);
