-- The three events every run writes on its way to success say nothing their
-- kind and data do not: `step <name> started (attempt <n>)` beside
-- `{"attempt": n}`, `step <name> succeeded`, `run succeeded`. The claim and
-- the last checkpoint store them without a message (NULL), and the timeline
-- composes it on read, with the step's name from its row: about 70 bytes a
-- run less. Every other event keeps the message it was written with (rows
-- written before this keep theirs too).
-- Figures and reasons: docs/decisions/0020-lean-rows-and-run-retention.md.

-- NOT VALID: every existing row has a message (the column was NOT NULL),
-- so checking them would only hold a lock over a scan of the whole table.
ALTER TABLE events ALTER COLUMN message DROP NOT NULL;
ALTER TABLE events ADD CONSTRAINT events_message_or_derivable CHECK (
    message IS NOT NULL OR kind IN ('step_started', 'step_succeeded', 'run_succeeded'))
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
    WHERE e.run_id IS NOT NULL;
