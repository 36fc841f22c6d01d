-- Federation: trusted peer organisations, what their agents may do here, the local tokens
-- minted for them (to follow their home organisation's revocations), and agent cards (SQLite).

CREATE TABLE federation_peers (
    issuer                 TEXT PRIMARY KEY,
    name                   TEXT NOT NULL UNIQUE,
    -- `pinned`: the keys were given and are never fetched; `metadata`: fetched from
    -- `metadata_url` (RFC 8414) and refreshed.
    source                 TEXT NOT NULL CHECK (source IN ('pinned', 'metadata')),
    metadata_url           TEXT,
    jwks                   TEXT NOT NULL,
    introspection_endpoint TEXT,
    fetched_at             TEXT,
    created_by             TEXT NOT NULL REFERENCES humans (id),
    created_at             TEXT NOT NULL
);

CREATE TABLE federation_grants (
    id          TEXT PRIMARY KEY,
    peer        TEXT NOT NULL,
    agents      TEXT NOT NULL,
    principals  TEXT NOT NULL,
    scopes      TEXT NOT NULL,
    resources   TEXT NOT NULL,
    constraints TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('active', 'revoked')),
    expires_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL REFERENCES humans (id),
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
);
CREATE INDEX federation_grants_peer_idx ON federation_grants (peer, status);

-- Local tokens minted from a peer's authorization grant: while they live, the grant is
-- introspected at the peer, and a grant the peer withdrew revokes them.
CREATE TABLE federated_tokens (
    jti           TEXT PRIMARY KEY,
    peer          TEXT NOT NULL,
    grant_id      TEXT NOT NULL,
    assertion_jti TEXT NOT NULL,
    assertion     TEXT NOT NULL,
    expires_at    TEXT NOT NULL
);
CREATE INDEX federated_tokens_assertion_idx ON federated_tokens (peer, assertion_jti);
CREATE INDEX federated_tokens_expiry_idx ON federated_tokens (expires_at);

-- Agents that publish a signed agent card.
CREATE TABLE agent_cards (
    agent_id     TEXT PRIMARY KEY REFERENCES agents (id),
    card         TEXT NOT NULL,
    published_at TEXT NOT NULL
);
