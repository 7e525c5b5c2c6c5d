-- The conditions of many environments in one statement: the environment
-- reads choose their environments first (one, or a page) and pass the ids.
--
-- It replaces `environment_conditions(uuid)`, which a page called once per
-- row. Each call started an executor for its query, and the query, which
-- reads the view `steps`, costs more to start than to run: about 60 µs an
-- environment, 3 ms for a page of 50 (decision 0020, fourth round). Here a
-- page costs one call: 0.7 ms for 50 environments.
--
-- PL/pgSQL rather than SQL, so each connection plans the query once (a SQL
-- function would be planned again inside every statement that calls it).
CREATE FUNCTION environments_conditions(environments uuid[])
RETURNS TABLE (environment_id uuid, conditions jsonb)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    -- Each environment's latest provisioning run, looked up one environment
    -- at a time from the end of `runs_environment`.
    WITH latest AS MATERIALIZED (
        SELECT e.id AS environment_id, p.id, p.current_step, p.created_at
        FROM unnest(environments) AS e (id)
        CROSS JOIN LATERAL (
            SELECT pr.id, pr.current_step, pr.created_at FROM runs pr
            JOIN workflow_definitions w ON w.id = pr.definition_id
            WHERE pr.environment_id = e.id AND w.workflow = 'provision'
            ORDER BY pr.created_at DESC, pr.id DESC LIMIT 1) p
    ),
    -- Their steps, all at once: filtered by a list of ids, each branch of
    -- `steps` is one index lookup. Joined to `latest` instead, the branch
    -- that joins runs to their definitions cannot take the run's id, and is
    -- computed again for every run (quadratic in the page's size).
    steps_of_latest AS MATERIALIZED (
        SELECT s.run_id, s.idx, s.name, s.state, s.attempts, s.error_message, s.updated_at
        FROM steps s WHERE s.run_id = ANY(ARRAY(SELECT l.id FROM latest l))
    )
    SELECT p.environment_id,
           jsonb_agg(jsonb_build_object(
               'name', s.name, 'state', s.state, 'attempts', s.attempts,
               'current', s.idx = p.current_step, 'error', s.error_message,
               -- A waiting step's note is its last "not ready yet".
               'note', CASE WHEN s.state = 'waiting' THEN (
                   SELECT ev.message FROM events ev
                   WHERE ev.run_id = p.id AND ev.step_idx = s.idx
                     AND ev.kind = 'step_waiting'
                   ORDER BY ev.id DESC LIMIT 1) END,
               'at', coalesce(s.updated_at, p.created_at)) ORDER BY s.idx)
    FROM latest p
    JOIN steps_of_latest s ON s.run_id = p.id
    GROUP BY p.environment_id;
END
$$;

DROP FUNCTION environment_conditions(uuid);
