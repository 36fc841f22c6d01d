-- Out-of-scope attempts by agents, counted over a sliding window to suspend misbehaving
-- agents (PostgreSQL).
CREATE TABLE agent_strikes (
    agent_id TEXT NOT NULL REFERENCES agents (id),
    at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX agent_strikes_agent_idx ON agent_strikes (agent_id, at);

-- Counting an agent's recent events of one kind (decision rate).
CREATE INDEX audit_events_agent_kind_time_idx ON audit_events (agent_id, kind, time);
