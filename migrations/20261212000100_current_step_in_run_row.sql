-- A run's current step lives in the run's row (decision 0020, fourth round).
--
-- A step row used to be inserted for every step of every run when the run
-- was accepted, and rewritten at each claim and checkpoint: for a one-step
-- run, two tuples with three versions each and two primary-key entries.
-- Now the step a run is at (its "slot": the current step, or the last one
-- once the run succeeded) is a few columns of the run, written by the same
-- UPDATEs that move the run; a step gets a row of its own, in
-- `step_history`, only once the run moves past it (inserted once, never
-- updated); the steps after the slot are not stored at all (they are
-- pending, or cancelled with their run, and their names and kinds are the
-- definition's).
--
-- `steps` is now a view that puts the three together with the columns and
-- values the table had, so every reader (the API, the console, the
-- timeline, the conditions, the phase trigger) reads what it read before.
-- Writers write `runs` and `step_history`.

ALTER TABLE steps RENAME TO step_history;
ALTER INDEX steps_pkey RENAME TO step_history_pkey;

ALTER TABLE runs
    ADD COLUMN step_attempts integer NOT NULL DEFAULT 0,
    ADD COLUMN step_polls integer NOT NULL DEFAULT 0,
    ADD COLUMN step_output jsonb,
    ADD COLUMN step_error_class error_class,
    ADD COLUMN step_error_message text,
    ADD COLUMN step_error_detail jsonb,
    ADD COLUMN step_started_at timestamptz,
    ADD COLUMN step_restarted_at timestamptz,
    ADD COLUMN step_started_event_id bigint,
    ADD COLUMN step_started_by text,
    ADD COLUMN step_started_at_boundary boolean,
    ADD COLUMN step_finished_event_id bigint,
    ADD COLUMN step_finished_by text;

-- Upgrading: each run's slot step moves into its row, and the rows of the
-- slot and the steps after it go. This rewrites every run row: run it in a
-- quiet moment on a large installation.
UPDATE runs r
SET step_attempts = h.attempts, step_polls = h.polls, step_output = h.output,
    step_error_class = h.error_class, step_error_message = h.error_message,
    step_error_detail = h.error_detail, step_started_at = h.started_at,
    step_restarted_at = h.restarted_at, step_started_event_id = h.started_event_id,
    step_started_by = h.started_by, step_started_at_boundary = h.started_at_boundary,
    step_finished_event_id = h.finished_event_id, step_finished_by = h.finished_by
FROM step_history h
WHERE h.run_id = r.id AND h.idx = least(r.current_step, r.step_count - 1);

DELETE FROM step_history h USING runs r
WHERE h.run_id = r.id AND h.idx >= least(r.current_step, r.step_count - 1);

ALTER TABLE runs
    ADD CONSTRAINT runs_step_output_only_if_succeeded CHECK (
        step_output IS NULL OR state = 'succeeded'),
    ADD CONSTRAINT runs_step_start_event_complete CHECK (
        step_started_event_id IS NULL OR (step_started_by IS NOT NULL AND step_started_at IS NOT NULL)),
    ADD CONSTRAINT runs_step_finished_event_only_if_succeeded CHECK (
        step_finished_event_id IS NULL OR state = 'succeeded');

-- A step's name, from its run's definition: what stored events name.
CREATE FUNCTION step_name(definition_id bigint, idx integer) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT w.definition -> 'steps' -> idx ->> 'name' FROM workflow_definitions w
    WHERE w.id = definition_id
$$;

CREATE VIEW steps AS
    SELECT h.run_id, h.idx, h.name, h.kind, h.state, h.attempts, h.polls, h.output,
           h.error_class, h.error_message, h.error_detail, h.started_at, h.finished_at,
           h.updated_at, h.started_event_id, h.finished_event_id, h.restarted_at,
           h.started_by, h.finished_by, h.started_at_boundary
    FROM step_history h
    UNION ALL
    -- The slot and the steps after it, from the run and its definition.
    SELECT r.id, p.idx, d.step ->> 'name', d.step ->> 'kind',
           CASE WHEN p.idx = p.slot THEN r.state::text
                WHEN r.state = 'cancelled' THEN 'cancelled'
                ELSE 'pending' END::step_state,
           CASE WHEN p.idx = p.slot THEN r.step_attempts ELSE 0 END,
           CASE WHEN p.idx = p.slot THEN r.step_polls ELSE 0 END,
           CASE WHEN p.idx = p.slot THEN r.step_output END,
           CASE WHEN p.idx = p.slot THEN r.step_error_class END,
           CASE WHEN p.idx = p.slot THEN r.step_error_message END,
           CASE WHEN p.idx = p.slot THEN r.step_error_detail END,
           CASE WHEN p.idx = p.slot THEN r.step_started_at END,
           -- A step's end is its run's: only the last step ends a run by
           -- succeeding, and a failing step fails its run.
           CASE WHEN p.idx = p.slot AND r.state IN ('succeeded', 'failed') THEN r.finished_at END,
           CASE WHEN r.state = 'cancelled' OR (p.idx = p.slot AND r.step_started_at IS NOT NULL)
                THEN r.updated_at END,
           CASE WHEN p.idx = p.slot THEN r.step_started_event_id END,
           CASE WHEN p.idx = p.slot THEN r.step_finished_event_id END,
           CASE WHEN p.idx = p.slot THEN r.step_restarted_at END,
           CASE WHEN p.idx = p.slot THEN r.step_started_by END,
           CASE WHEN p.idx = p.slot THEN r.step_finished_by END,
           CASE WHEN p.idx = p.slot THEN r.step_started_at_boundary END
    FROM runs r
    JOIN workflow_definitions w ON w.id = r.definition_id
    CROSS JOIN LATERAL jsonb_array_elements(w.definition -> 'steps') WITH ORDINALITY AS d(step, ord)
    CROSS JOIN LATERAL (SELECT (d.ord - 1)::integer AS idx,
                               least(r.current_step, r.step_count - 1) AS slot) p
    WHERE p.idx >= p.slot;

-- Views bind the tables they name when they are created: the timeline named
-- the table now called `step_history`, and reads the view from here on.
CREATE OR REPLACE VIEW run_timeline AS
    SELECT r.created_event_id AS id, r.id AS run_id, NULL::integer AS step_idx,
           'run_created'::text AS kind, r.created_by AS actor,
           'run accepted'::text AS message,
           CASE WHEN r.traceparent IS NOT NULL
                THEN jsonb_build_object('trace_id', substr(r.traceparent, 4, 32)) END AS data,
           r.created_at AS at
    FROM runs r
    UNION ALL
    SELECT e.id, e.run_id, e.step_idx, e.kind, e.actor,
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
