-- Access tokens issued to resource servers (client credentials), stored only as hashes,
-- each bound to the resource server's key (PostgreSQL).
CREATE TABLE client_tokens (
    token_hash TEXT COLLATE "C" PRIMARY KEY,
    client_id  TEXT NOT NULL REFERENCES resource_servers (id),
    jkt        TEXT NOT NULL,
    scope      TEXT NOT NULL,
    issued_at  TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX client_tokens_expiry_idx ON client_tokens (expires_at);
