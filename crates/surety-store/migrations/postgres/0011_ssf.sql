-- Shared Signals Framework streams: receivers (registered resource servers) and what they
-- asked for; each stream's cursor is the audit-log leaf its events are delivered up to
-- (PostgreSQL).
CREATE TABLE ssf_streams (
    id           TEXT COLLATE "C" PRIMARY KEY,
    receiver     TEXT NOT NULL REFERENCES resource_servers (id),
    audience     TEXT NOT NULL,
    method       TEXT NOT NULL CHECK (method IN ('push', 'poll')),
    endpoint_url TEXT,
    events       TEXT NOT NULL,
    description  TEXT,
    status       TEXT NOT NULL CHECK (status IN ('enabled', 'paused', 'disabled')),
    reason       TEXT,
    cursor       BIGINT NOT NULL CHECK (cursor >= 0),
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX ssf_streams_receiver_idx ON ssf_streams (receiver);
