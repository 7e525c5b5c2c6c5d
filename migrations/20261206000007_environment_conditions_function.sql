-- An environment's conditions as the store reads them: the steps of its latest
-- provisioning run, each as the few fields `StepDigest` reads (the rule that
-- makes them conditions is in Rust). A waiting step's note is its last
-- "not ready yet". One function, so the environment reads (one, the one a
-- run works on, a page) share it instead of repeating a lateral join: sqlx
-- checks each query text on its own and cannot splice a shared fragment.
CREATE FUNCTION environment_conditions(environment uuid) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'name', s.name, 'state', s.state, 'attempts', s.attempts,
               'current', s.idx = p.current_step, 'error', s.error_message,
               'note', CASE WHEN s.state = 'waiting' THEN (
                   SELECT ev.message FROM events ev
                   WHERE ev.run_id = p.id AND ev.step_idx = s.idx
                     AND ev.kind = 'step_waiting'
                   ORDER BY ev.id DESC LIMIT 1) END,
               'at', coalesce(s.updated_at, p.created_at)) ORDER BY s.idx),
           '[]')
    FROM (SELECT pr.id, pr.current_step, pr.created_at FROM runs pr
          WHERE pr.environment_id = environment AND pr.workflow = 'provision'
          ORDER BY pr.created_at DESC, pr.id DESC LIMIT 1) p
    JOIN steps s ON s.run_id = p.id
$$;
