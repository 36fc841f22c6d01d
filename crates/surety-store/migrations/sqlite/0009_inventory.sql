-- What the inventory reports read instead of the audit log (SQLite): how each granted scope
-- was exercised, and each agent's activity per UTC day. Both are written in the same
-- transaction as the audit events they summarise.

-- A scope is exercised when a decision allows the action it names under a token minted
-- from the grant.
CREATE TABLE grant_scope_usage (
    grant_id     TEXT NOT NULL REFERENCES grants (id),
    scope        TEXT NOT NULL,
    uses         INTEGER NOT NULL CHECK (uses > 0),
    last_used_at TEXT NOT NULL,
    PRIMARY KEY (grant_id, scope)
);

CREATE TABLE agent_activity_daily (
    agent_id TEXT NOT NULL REFERENCES agents (id),
    day      TEXT NOT NULL,
    tokens   INTEGER NOT NULL DEFAULT 0,
    allowed  INTEGER NOT NULL DEFAULT 0,
    denied   INTEGER NOT NULL DEFAULT 0,
    step_up  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (agent_id, day)
);

-- Both start from what the audit log already holds: access tokens from token exchange,
-- evaluated decisions (those filed under the agent), allowed actions named in the grant.
INSERT INTO grant_scope_usage (grant_id, scope, uses, last_used_at)
SELECT json_extract(e.details, '$.grant_id'), json_extract(e.details, '$.action'),
       COUNT(*), MAX(e.time)
FROM audit_events e
JOIN grants g ON g.id = json_extract(e.details, '$.grant_id')
WHERE e.kind = 'decision.made'
  AND json_extract(e.details, '$.decision') = 'allow'
  AND EXISTS (SELECT 1 FROM json_each(g.scopes) s
              WHERE s.value = json_extract(e.details, '$.action'))
GROUP BY 1, 2;

INSERT INTO agent_activity_daily (agent_id, day, tokens, allowed, denied, step_up)
SELECT e.agent_id, substr(e.time, 1, 10),
       SUM(e.kind = 'token.issued'
           AND json_extract(e.details, '$.grant_type') = 'urn:ietf:params:oauth:grant-type:token-exchange'),
       SUM(e.kind = 'decision.made' AND json_extract(e.details, '$.decision') = 'allow'),
       SUM(e.kind = 'decision.made' AND json_extract(e.details, '$.decision') = 'deny'),
       SUM(e.kind = 'decision.made' AND json_extract(e.details, '$.decision') = 'step_up')
FROM audit_events e
JOIN agents a ON a.id = e.agent_id
WHERE e.kind IN ('token.issued', 'decision.made')
GROUP BY 1, 2;
