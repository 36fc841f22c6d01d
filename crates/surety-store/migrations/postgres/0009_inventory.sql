-- What the inventory reports read instead of the audit log (PostgreSQL): how each granted
-- scope was exercised, and each agent's activity per UTC day. Both are written in the same
-- transaction as the audit events they summarise.

-- A scope is exercised when a decision allows the action it names under a token minted
-- from the grant.
CREATE TABLE grant_scope_usage (
    grant_id     TEXT NOT NULL REFERENCES grants (id),
    scope        TEXT NOT NULL,
    uses         BIGINT NOT NULL CHECK (uses > 0),
    last_used_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (grant_id, scope)
);

CREATE TABLE agent_activity_daily (
    agent_id TEXT NOT NULL REFERENCES agents (id),
    day      TEXT NOT NULL,
    tokens   BIGINT NOT NULL DEFAULT 0,
    allowed  BIGINT NOT NULL DEFAULT 0,
    denied   BIGINT NOT NULL DEFAULT 0,
    step_up  BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (agent_id, day)
);

-- Both start from what the audit log already holds: access tokens from token exchange,
-- evaluated decisions (those filed under the agent), allowed actions named in the grant.
INSERT INTO grant_scope_usage (grant_id, scope, uses, last_used_at)
SELECT e.details::jsonb ->> 'grant_id', e.details::jsonb ->> 'action', COUNT(*), MAX(e.time)
FROM audit_events e
JOIN grants g ON g.id = e.details::jsonb ->> 'grant_id'
WHERE e.kind = 'decision.made'
  AND e.details::jsonb ->> 'decision' = 'allow'
  AND g.scopes::jsonb ? (e.details::jsonb ->> 'action')
GROUP BY 1, 2;

INSERT INTO agent_activity_daily (agent_id, day, tokens, allowed, denied, step_up)
SELECT e.agent_id, to_char(e.time AT TIME ZONE 'UTC', 'YYYY-MM-DD'),
       COUNT(*) FILTER (WHERE e.kind = 'token.issued'
           AND e.details::jsonb ->> 'grant_type' = 'urn:ietf:params:oauth:grant-type:token-exchange'),
       COUNT(*) FILTER (WHERE e.kind = 'decision.made' AND e.details::jsonb ->> 'decision' = 'allow'),
       COUNT(*) FILTER (WHERE e.kind = 'decision.made' AND e.details::jsonb ->> 'decision' = 'deny'),
       COUNT(*) FILTER (WHERE e.kind = 'decision.made' AND e.details::jsonb ->> 'decision' = 'step_up')
FROM audit_events e
JOIN agents a ON a.id = e.agent_id
WHERE e.kind IN ('token.issued', 'decision.made')
GROUP BY 1, 2;
