-- A step's latest `step_started` and its `step_succeeded` are no longer rows
-- of `events`: they live on the step row, as the run's creation and success
-- live on the run row (migrations 20261208000300 and 302). The row keeps each
-- event's id, drawn from the events' sequence by the statement that writes
-- the step, so the events sort where stored ones sorted; the time, attempt
-- and name are already on the row; only the actors are new. About 240 bytes
-- a run less. Figures and reasons:
-- docs/decisions/0020-lean-rows-and-run-retention.md, "Third round".
--
-- Only the latest start fits: whatever would overwrite it (the next start of
-- a retried step, a released attempt that is given back, an operator's reset)
-- first stores it as a `step_started` event with its own id, in the same
-- statement, so the timeline does not change. The same goes for a success
-- the row already holds. Steps started or finished before this keep their
-- stored events and NULL ids here, so nothing shows twice.
--
-- No index on these columns: `steps` updates stay HOT (fillfactor 85).

-- The fixed-width columns first: no padding between them and the rest.
ALTER TABLE steps
    ADD COLUMN started_event_id bigint,
    ADD COLUMN finished_event_id bigint,
    -- When the latest start happened, where it is not the first
    -- (`started_at`, which a durable sleep measures from). NULL otherwise.
    ADD COLUMN restarted_at timestamptz,
    ADD COLUMN started_by text,
    -- NULL: the worker that started it, which is nearly always the one.
    ADD COLUMN finished_by text,
    -- The checkpoint that finished the step before started this one; those
    -- `step_started` events never carried the attempt in their data.
    ADD COLUMN started_at_boundary boolean,
    -- NOT VALID: the columns are new, so every existing row passes; checking
    -- them would only hold a lock over a scan of the whole table.
    ADD CONSTRAINT steps_start_event_complete CHECK (
        started_event_id IS NULL OR (started_by IS NOT NULL AND started_at IS NOT NULL))
        NOT VALID,
    ADD CONSTRAINT steps_finished_event_only_if_succeeded CHECK (
        finished_event_id IS NULL OR (state = 'succeeded' AND finished_at IS NOT NULL))
        NOT VALID;

CREATE OR REPLACE VIEW run_timeline AS
    SELECT r.created_event_id AS id, r.id AS run_id, NULL::integer AS step_idx,
           'run_created'::text AS kind, r.created_by AS actor,
           'run accepted'::text AS message,
           -- The trace id (the traceparent's second field) is what a
           -- tracing back end is searched by.
           CASE WHEN r.traceparent IS NOT NULL
                THEN jsonb_build_object('trace_id', substr(r.traceparent, 4, 32)) END AS data,
           r.created_at AS at
    FROM runs r
    UNION ALL
    SELECT e.id, e.run_id, e.step_idx, e.kind, e.actor,
           -- The step's name is read only for an event stored without a
           -- message (CASE evaluates the branch it takes).
           coalesce(e.message, CASE e.kind
               WHEN 'step_started' THEN format('step %s started (attempt %s)',
                   (SELECT s.name FROM steps s WHERE s.run_id = e.run_id AND s.idx = e.step_idx),
                   e.data ->> 'attempt')
               WHEN 'step_succeeded' THEN format('step %s succeeded',
                   (SELECT s.name FROM steps s WHERE s.run_id = e.run_id AND s.idx = e.step_idx))
               WHEN 'run_succeeded' THEN 'run succeeded' END) AS message,
           e.data, e.at
    FROM events e
    WHERE e.run_id IS NOT NULL
    UNION ALL
    SELECT s.started_event_id, s.run_id, s.idx, 'step_started'::text, s.started_by,
           format('step %s started (attempt %s)', s.name, s.attempts),
           CASE WHEN s.started_at_boundary IS NOT TRUE
                THEN jsonb_build_object('attempt', s.attempts) END,
           coalesce(s.restarted_at, s.started_at)
    FROM steps s
    WHERE s.started_event_id IS NOT NULL
    UNION ALL
    SELECT s.finished_event_id, s.run_id, s.idx, 'step_succeeded'::text,
           coalesce(s.finished_by, s.started_by),
           format('step %s succeeded', s.name), NULL::jsonb, s.finished_at
    FROM steps s
    WHERE s.finished_event_id IS NOT NULL
    UNION ALL
    -- The actor of the run's last `step_succeeded`: on its step row, or
    -- stored by a version before this one.
    SELECT r.finished_event_id, r.id, NULL::integer, 'run_succeeded'::text,
           coalesce(
               (SELECT coalesce(s.finished_by, s.started_by) FROM steps s
                WHERE s.run_id = r.id AND s.finished_event_id IS NOT NULL
                ORDER BY s.finished_event_id DESC LIMIT 1),
               (SELECT e.actor FROM events e
                WHERE e.run_id = r.id AND e.kind = 'step_succeeded'
                ORDER BY e.id DESC LIMIT 1)),
           'run succeeded'::text, NULL::jsonb, r.finished_at
    FROM runs r
    WHERE r.finished_event_id IS NOT NULL;
