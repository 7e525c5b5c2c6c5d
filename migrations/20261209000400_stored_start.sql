-- A start that a step's row no longer holds (migration 20261209000200) is
-- stored as an event the way the statement that started the step would have
-- stored it: a checkpoint's start of the next step with its message and no
-- data, a claim's with its attempt in the data and no message (the timeline
-- composes that message). One definition for every statement that stores
-- one: the claim, the checkpoint, the release at shutdown, an operator retry.
CREATE FUNCTION stored_start_message(at_boundary boolean, step text, attempt integer)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN at_boundary THEN format('step %s started (attempt %s)', step, attempt) END
$$;

CREATE FUNCTION stored_start_data(at_boundary boolean, attempt integer)
RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN at_boundary IS NOT TRUE THEN jsonb_build_object('attempt', attempt) END
$$;
