-- An environment's conditions as a one-row table function: a SQL function in
-- FROM is inlined into the query that calls it, so a page of environments
-- reads the runs and steps it needs in one plan instead of calling a
-- function once per row (for a page of 50 over 10,000 environments, 2.6 ms
-- of execution against 4.0). Same body as before; `environment_conditions`
-- stays, as a wrapper, for processes of the release before during a rollout.
CREATE FUNCTION environment_conditions_of(environment uuid) RETURNS TABLE (conditions jsonb)
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

CREATE OR REPLACE FUNCTION environment_conditions(environment uuid) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT conditions FROM environment_conditions_of(environment)
$$;
