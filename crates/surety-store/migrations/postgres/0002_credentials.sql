-- Delegated credentials: grants, organisation signing keys, resource servers, and what
-- revocation needs (PostgreSQL).

-- Tokens issued before these instants are inactive (set on every status change of the
-- principal or agent, so a token minted while a suspension was committing stays dead
-- after reinstatement too).
ALTER TABLE humans ADD COLUMN tokens_not_before TIMESTAMPTZ;
ALTER TABLE agents ADD COLUMN tokens_not_before TIMESTAMPTZ;

-- `expired` is not stored: a grant past `expires_at` is expired whatever `status` says.
CREATE TABLE grants (
    id                   TEXT COLLATE "C" PRIMARY KEY,
    agent_id             TEXT NOT NULL REFERENCES agents (id),
    principal_id         TEXT NOT NULL REFERENCES humans (id),
    created_by           TEXT NOT NULL REFERENCES humans (id),
    scopes               TEXT NOT NULL,
    resources            TEXT NOT NULL,
    constraints          TEXT NOT NULL,
    max_delegation_depth BIGINT NOT NULL CHECK (max_delegation_depth >= 0),
    status               TEXT NOT NULL CHECK (status IN ('proposed', 'active', 'revoked', 'declined')),
    status_reason        TEXT,
    created_at           TIMESTAMPTZ NOT NULL,
    updated_at           TIMESTAMPTZ NOT NULL,
    expires_at           TIMESTAMPTZ NOT NULL
);
CREATE INDEX grants_agent_idx ON grants (agent_id, id);
CREATE INDEX grants_principal_idx ON grants (principal_id, id);

-- Private halves are sealed (AES-256-GCM) under a key-encryption key that is never stored
-- here. A retired key stays published until `publish_until`.
CREATE TABLE signing_keys (
    kid            TEXT COLLATE "C" PRIMARY KEY,
    alg            TEXT NOT NULL,
    public_jwk     TEXT NOT NULL,
    sealed_private BYTEA NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('active', 'retired')),
    created_at     TIMESTAMPTZ NOT NULL,
    retired_at     TIMESTAMPTZ,
    publish_until  TIMESTAMPTZ
);

CREATE TABLE resource_servers (
    id         TEXT COLLATE "C" PRIMARY KEY,
    name       TEXT NOT NULL,
    audience   TEXT NOT NULL,
    kid        TEXT NOT NULL,
    jwk        TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
    created_by TEXT NOT NULL REFERENCES humans (id),
    created_at TIMESTAMPTZ NOT NULL,
    CONSTRAINT resource_servers_audience_key UNIQUE (audience),
    CONSTRAINT resource_servers_kid_key UNIQUE (kid)
);

-- Access tokens revoked one by one (RFC 7009), kept until they would have expired anyway.
CREATE TABLE revoked_tokens (
    jti        TEXT COLLATE "C" PRIMARY KEY,
    revoked_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX revoked_tokens_expiry_idx ON revoked_tokens (expires_at);
