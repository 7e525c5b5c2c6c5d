-- A run's `run_succeeded` event is no longer a row of `events` either: it is
-- written in the same statement as the last step's `step_succeeded`, by the
-- same worker, at the run's `finished_at`. The run keeps only the event's id,
-- drawn from the events' sequence after the step's event id (so it sorts
-- after it) and before any event that could follow. The timeline synthesizes
-- it; its actor is that of the run's last `step_succeeded`. Runs that
-- succeeded before this keep their stored event (and a NULL id here).
-- Figures and reasons: docs/decisions/0020-lean-rows-and-run-retention.md.

-- NOT VALID: the column is new, so every existing row is NULL; checking
-- them would only hold a lock over a scan of the whole table.
ALTER TABLE runs ADD COLUMN finished_event_id bigint,
    ADD CONSTRAINT runs_finished_event_only_if_succeeded
        CHECK (finished_event_id IS NULL OR state = 'succeeded') NOT VALID;

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
    SELECT r.finished_event_id, r.id, NULL::integer, 'run_succeeded'::text,
           (SELECT e.actor FROM events e
            WHERE e.run_id = r.id AND e.kind = 'step_succeeded'
            ORDER BY e.id DESC LIMIT 1),
           'run succeeded'::text, NULL::jsonb, r.finished_at
    FROM runs r
    WHERE r.finished_event_id IS NOT NULL;
