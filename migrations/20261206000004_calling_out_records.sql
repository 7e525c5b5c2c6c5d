-- Teardown skips a step whose provisioning counterpart never called out
-- (docs/decisions/0010-teardown-of-partial-provisioning.md). Steps record
-- that they call out from this version on; for environments that still exist,
-- every step that ever started before it is taken to have called out, so
-- their teardown still undoes whatever those steps may have made.
INSERT INTO events (run_id, step_idx, kind, actor, message, data, at)
SELECT s.run_id, s.idx, 'step_calling_out', 'migration',
       format('step %s started before steps recorded their calls out; taken to have called out', s.name),
       jsonb_build_object('kind', s.kind), now()
FROM steps s
JOIN runs r ON r.id = s.run_id
JOIN environments env ON env.id = r.environment_id AND env.phase <> 'deleted'
WHERE s.started_at IS NOT NULL
   -- An operator's retry resets a step's row; its timeline keeps the start.
   OR EXISTS (SELECT 1 FROM events e
              WHERE e.run_id = s.run_id AND e.step_idx = s.idx AND e.kind = 'step_started');
