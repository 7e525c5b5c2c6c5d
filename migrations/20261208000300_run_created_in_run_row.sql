-- A run's `run_created` event is no longer a row of `events`: everything it
-- said (who, when, the trace id) is on the run row already. The run keeps
-- only the event's id, drawn from the events' own sequence when the run is
-- inserted, so it sorts before every later event of the run and can never
-- collide with a stored one: `?after=`, `Last-Event-ID` and the streams'
-- cursors work on it unchanged. The view `run_timeline` puts it back beside
-- the stored events for every read of a run's timeline.
-- Figures and reasons: docs/decisions/0020-lean-rows-and-run-retention.md.

ALTER TABLE runs ADD COLUMN created_event_id bigint;

-- Upgrading: runs keep the id their stored event had, then it goes.
UPDATE runs r SET created_event_id = e.id
FROM events e
WHERE e.run_id = r.id AND e.kind = 'run_created';
-- A run without one (only fixtures inserted runs without) gets a fresh id:
-- its creation shows after its other events, the one place it can.
UPDATE runs SET created_event_id = nextval('events_id_seq')
WHERE created_event_id IS NULL;
DELETE FROM events WHERE kind = 'run_created';

ALTER TABLE runs
    ALTER COLUMN created_event_id SET DEFAULT nextval('events_id_seq'),
    ALTER COLUMN created_event_id SET NOT NULL;

-- A run's timeline: its creation, synthesized from the run row, and its
-- stored events. Reads filter by `run_id` (and `id >` a cursor); the
-- planner pushes both into each branch, so the run's row is read by its
-- primary key and its events by `events_run`.
CREATE VIEW run_timeline AS
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
    SELECT e.id, e.run_id, e.step_idx, e.kind, e.actor, e.message, e.data, e.at
    FROM events e
    WHERE e.run_id IS NOT NULL;
