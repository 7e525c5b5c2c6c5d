-- The audit trail: one row per state-changing action, whoever did it and
-- however it ended (docs/decisions/0017-audit-log.md). Written by the API's
-- audit middleware after each non-GET `/v1` call, by `hubwright admin token`
-- and by whatever else changes state on someone's behalf (a policy reload).
-- Rows are never updated; the scheduler deletes those older than the
-- retention (`serve --audit-retention`).

CREATE TABLE audit_log (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The injected clock's time, so tests (and retention) control it.
    at           timestamptz NOT NULL,
    -- Who: the caller's subject; NULL when nobody could be authenticated (a 401).
    actor        text CHECK (length(actor) BETWEEN 1 AND 200),
    actor_role   api_role,
    -- How they proved it: `token`, `oidc`, `database` (a command that writes
    -- straight to the database, e.g. `hubwright admin token`), `system`
    -- (hubwright itself) or `none` (not authenticated).
    auth         text NOT NULL CHECK (auth IN ('token', 'oidc', 'database', 'system', 'none')),
    -- What: `environment.create`, `run.retry`, `token.revoke`, ...
    action       text NOT NULL CHECK (length(action) BETWEEN 1 AND 100),
    target_kind  text CHECK (length(target_kind) <= 100),
    -- An id where one is known; otherwise what the caller named (an
    -- environment's name in the path).
    target_id    text CHECK (length(target_id) <= 200),
    outcome      text NOT NULL CHECK (outcome IN ('success', 'failure')),
    -- The HTTP status answered; NULL for actions outside the API.
    status       smallint,
    -- For refusals: the problem document's `type` and `detail`.
    problem_type text CHECK (length(problem_type) <= 200),
    detail       text CHECK (length(detail) <= 1000),
    -- From where: the TCP peer of the API call.
    client_addr  inet,
    method       text CHECK (length(method) <= 10),
    path         text CHECK (length(path) <= 1000)
);

-- Retention deletes by age; `since`/`until` filter by it.
CREATE INDEX audit_log_at ON audit_log (at);
-- The list is newest first by id within each filter.
CREATE INDEX audit_log_actor ON audit_log (actor, id);
CREATE INDEX audit_log_action ON audit_log (action, id);
CREATE INDEX audit_log_target ON audit_log (target_id, id);

-- A created thing is recorded as created once: an idempotent replay of the
-- same request (same `Idempotency-Key`) answers the same 202 again but is not
-- a second creation. Inserts use ON CONFLICT DO NOTHING against this index.
CREATE UNIQUE INDEX audit_log_created_once ON audit_log (action, target_id)
    WHERE outcome = 'success' AND action LIKE '%.create';
