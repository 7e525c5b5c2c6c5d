-- Leaner rows and cheaper batch inserts for the hot tables (runs, steps,
-- events). Figures and reasons: docs/decisions/0020-lean-rows-and-run-retention.md.

-- A run's definition id comes only from `register_definition`, and
-- definitions are never deleted: the per-row key check cost 3.5 µs of a
-- batch insert's ~25 µs per run and guarded nothing the code can get wrong.
ALTER TABLE runs DROP CONSTRAINT runs_definition_id_fkey;

-- Steps are inserted only by the statement that inserts their run, and
-- deleted only by run retention's statement that deletes their run (as
-- events, which lost their key for the same reason). The per-row key check
-- cost about as much as the run's own insert.
ALTER TABLE steps DROP CONSTRAINT steps_run_id_fkey;

-- A run's events are read by run, a few dozen at most per run; the id order
-- is a sort of those few. On `run_id` alone the index stores each run once
-- with a list of its events (B-tree deduplication) instead of one entry per
-- event: a third of the size after W1.
DROP INDEX events_run;
CREATE INDEX events_run ON events (run_id);

-- Nobody follows a run before its creation has committed (the API answers
-- with the run's id after the commit), so `run_created` wakes no stream: a
-- batch of 1,000 runs no longer sends 1,000 notifications.
CREATE OR REPLACE FUNCTION notify_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('hubwright_events', run_id::text || ' ' || newest::text)
    FROM (SELECT run_id, max(id) AS newest FROM new_events
          WHERE run_id IS NOT NULL AND kind <> 'run_created'
          GROUP BY run_id) AS runs;
    RETURN NULL;
END
$$;

-- Every run row is updated twice (claim, end) and leaves two dead versions;
-- the claim index keeps their entries until a vacuum, and every claim skips
-- them. Vacuum after 2% of the rows are dead rather than 20%. Steps likewise;
-- their updates change no indexed column, so room left on each page lets
-- them stay HOT (no new index entry, and the page prunes itself).
ALTER TABLE runs SET (autovacuum_vacuum_scale_factor = 0.02,
                      autovacuum_vacuum_insert_scale_factor = 0.05);
ALTER TABLE steps SET (fillfactor = 85,
                       autovacuum_vacuum_scale_factor = 0.02,
                       autovacuum_vacuum_insert_scale_factor = 0.05);
-- Events are only inserted, and deleted by retention a batch at a time:
-- vacuum after a retention pass's deletions, not after a fifth of the table.
ALTER TABLE events SET (autovacuum_vacuum_scale_factor = 0.05);
