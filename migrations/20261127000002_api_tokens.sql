-- Who may call the API, and who started each run.

CREATE TYPE api_role AS ENUM ('developer', 'operator', 'admin');

-- Bearer tokens. Only a SHA-256 of the token is stored: the token itself is shown
-- once, when created, and cannot be recovered from the database.
CREATE TABLE api_tokens (
    id            uuid PRIMARY KEY,
    subject       text NOT NULL CHECK (length(subject) BETWEEN 1 AND 200),
    role          api_role NOT NULL,
    token_hash    text NOT NULL CONSTRAINT api_tokens_hash_key UNIQUE,
    created_at    timestamptz NOT NULL,
    last_used_at  timestamptz,
    revoked_at    timestamptz
);

-- The subject (user, `scheduler`, `cli`) that asked for the run: developers see
-- the runs they started.
ALTER TABLE runs ADD COLUMN created_by text NOT NULL DEFAULT 'system';
ALTER TABLE runs ALTER COLUMN created_by DROP DEFAULT;
