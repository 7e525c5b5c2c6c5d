-- `Idempotency-Key` on requests that create things: the same key and body get
-- the same answer; the same key with another body is refused.
CREATE TABLE idempotency_keys (
    owner         text NOT NULL,
    key           text NOT NULL CHECK (length(key) BETWEEN 1 AND 200),
    request_hash  text NOT NULL,
    response      jsonb NOT NULL,
    created_at    timestamptz NOT NULL,
    PRIMARY KEY (owner, key)
);
