-- Time-to-live: the scheduler's path to expired environments, warnings recorded
-- once, and extensions counted against a template's `max_extensions`.

-- Environments that can still expire: teardown never asked for (a teardown
-- that failed keeps teardown_requested_at, so expiry does not retry it behind
-- the operator's back). The scheduler's sleep and its sweep both read this.
CREATE INDEX environments_expiry_due ON environments (expires_at)
    WHERE teardown_requested_at IS NULL;

ALTER TABLE environments ADD COLUMN extensions integer NOT NULL DEFAULT 0
    CONSTRAINT environments_extensions_non_negative CHECK (extensions >= 0);

-- One row per warning given. The primary key makes a warning idempotent across
-- scheduler replicas; an extension moves expires_at, so the new expiry is
-- warned about again.
CREATE TABLE expiry_warnings (
    environment_id  uuid NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    lead_seconds    bigint NOT NULL CHECK (lead_seconds > 0),
    expires_at      timestamptz NOT NULL,
    warned_at       timestamptz NOT NULL,
    PRIMARY KEY (environment_id, lead_seconds, expires_at)
);
