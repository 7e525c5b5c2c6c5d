-- `GET /v1/queue` counts the runs rescued in the last hour and lists the
-- latest rescues (`lease_expired` events). Rare among events, so without an
-- index each look would scan the whole timeline; partial, so the hot path
-- (every other event) never writes to it.
CREATE INDEX events_rescues ON events (at) WHERE kind = 'lease_expired';
