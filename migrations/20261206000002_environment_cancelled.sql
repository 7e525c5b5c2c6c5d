-- An environment whose run was cancelled without a teardown (an operator's
-- `POST /v1/runs/{id}/cancel`) says so with the phase `cancelled`, instead of
-- staying `provisioning` (or `tearing_down`) until someone deletes it. See
-- docs/decisions/0009-cancelled-runs-leave-the-environment-cancelled.md.
ALTER TYPE environment_phase ADD VALUE IF NOT EXISTS 'cancelled' AFTER 'failed';

CREATE OR REPLACE FUNCTION environment_follows_run() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.workflow = 'teardown' THEN
        -- A cancelled teardown leaves `cancelled`, not `tearing_down`: nothing
        -- would ever start it again, and a DELETE may now ask once more.
        UPDATE environments
        SET phase = CASE NEW.state
                        WHEN 'succeeded' THEN 'deleted'
                        WHEN 'failed' THEN 'failed'
                        WHEN 'cancelled' THEN 'cancelled'
                        ELSE 'tearing_down' END::environment_phase,
            last_error = CASE WHEN NEW.state = 'failed' THEN NEW.error_message END,
            updated_at = NEW.updated_at
        WHERE id = NEW.environment_id AND phase <> 'deleted';
    ELSE
        -- Once teardown is asked for, other runs ending do not move the phase
        -- (a provisioning run that a DELETE cancelled ends here too).
        UPDATE environments
        SET phase = CASE NEW.state
                        WHEN 'succeeded' THEN 'ready'
                        WHEN 'failed' THEN 'failed'
                        WHEN 'cancelled' THEN 'cancelled'
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
