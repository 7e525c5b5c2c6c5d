-- Environments follow their runs: the phase moves when a run of the environment
-- changes state, in the same transaction, so the two can never disagree.

ALTER TABLE environments
    ADD COLUMN last_error text,
    -- The teardown workflow to start once nothing else runs for the environment
    -- (set by a delete request, or later by TTL expiry).
    ADD COLUMN teardown_definition_id bigint REFERENCES workflow_definitions (id),
    ADD COLUMN teardown_requested_at timestamptz,
    ADD COLUMN teardown_requested_by text,
    ADD CONSTRAINT environments_teardown_requested CHECK (
        (teardown_requested_at IS NULL) = (teardown_definition_id IS NULL));

-- Environments waiting for their teardown to start: the sweep's path.
CREATE INDEX environments_teardown_due ON environments (teardown_requested_at)
    WHERE phase = 'tearing_down';

CREATE FUNCTION environment_follows_run() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.workflow = 'teardown' THEN
        UPDATE environments
        SET phase = CASE NEW.state
                        WHEN 'succeeded' THEN 'deleted'
                        WHEN 'failed' THEN 'failed'
                        ELSE 'tearing_down' END::environment_phase,
            last_error = CASE WHEN NEW.state = 'failed' THEN NEW.error_message END,
            updated_at = NEW.updated_at
        WHERE id = NEW.environment_id AND phase <> 'deleted';
    ELSE
        -- Once teardown is asked for, other runs ending do not move the phase.
        UPDATE environments
        SET phase = CASE NEW.state
                        WHEN 'succeeded' THEN 'ready'
                        WHEN 'failed' THEN 'failed'
                        WHEN 'running' THEN 'provisioning'
                        ELSE phase END::environment_phase,
            -- A step that learns the environment's address reports it as `url`.
            url = CASE WHEN NEW.state = 'succeeded' THEN coalesce(
                      (SELECT s.output ->> 'url' FROM steps s
                       WHERE s.run_id = NEW.id AND s.output ? 'url'
                       ORDER BY s.idx DESC LIMIT 1), url)
                  ELSE url END,
            last_error = CASE WHEN NEW.state = 'failed' THEN NEW.error_message
                              WHEN NEW.state = 'succeeded' THEN NULL
                              ELSE last_error END,
            updated_at = NEW.updated_at
        WHERE id = NEW.environment_id AND phase NOT IN ('tearing_down', 'deleted');
    END IF;
    RETURN NULL;
END
$$;

-- Runs without an environment (benchmarks, generic workflows) never fire it.
CREATE TRIGGER runs_move_environment_phase
    AFTER UPDATE OF state ON runs
    FOR EACH ROW
    WHEN (NEW.environment_id IS NOT NULL AND OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION environment_follows_run();

-- Environment-level actions (extend, delete) are on the timeline too.
ALTER TABLE events
    ALTER COLUMN run_id DROP NOT NULL,
    ADD COLUMN environment_id uuid,
    ADD CONSTRAINT events_about_something CHECK (run_id IS NOT NULL OR environment_id IS NOT NULL);
CREATE INDEX events_environment ON events (environment_id, id) WHERE environment_id IS NOT NULL;
