-- Token management is audited like every other mutating call: events may be
-- about a token (who created or revoked it), and tokens remember who made them.

ALTER TABLE events
    ADD COLUMN token_id uuid,
    DROP CONSTRAINT events_about_something,
    ADD CONSTRAINT events_about_something
        CHECK (num_nonnulls(run_id, environment_id, token_id) >= 1);
CREATE INDEX events_token ON events (token_id, id) WHERE token_id IS NOT NULL;

-- `bootstrap` marks tokens made directly in the database (the first admin's).
ALTER TABLE api_tokens ADD COLUMN created_by text NOT NULL DEFAULT 'bootstrap';
ALTER TABLE api_tokens ALTER COLUMN created_by DROP DEFAULT;
