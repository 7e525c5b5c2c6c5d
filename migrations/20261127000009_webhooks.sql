-- Webhook delivery of environment lifecycle events (expiry warnings, expiries)
-- from the events table itself, read in id order behind one cursor per
-- endpoint. The scheduler replica that holds the cursor row's lock delivers;
-- the cursor moves only past what the endpoint accepted (at least once).
CREATE TABLE webhook_cursors (
    name           text PRIMARY KEY,
    last_event_id  bigint NOT NULL CHECK (last_event_id >= 0),
    updated_at     timestamptz NOT NULL
);

-- The deliverer's read: events of the kinds it sends, after the cursor.
CREATE INDEX events_lifecycle ON events (id)
    WHERE kind IN ('expiry_warning', 'environment_expired');
