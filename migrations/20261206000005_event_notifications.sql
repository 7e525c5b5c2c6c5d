-- Event streams follow runs by LISTEN/NOTIFY instead of polling: every insert
-- into `events` tells the channel `hubwright_events` which runs got events and
-- the newest event id of each (payload `<run id> <event id>`). One
-- notification per run per statement, so a step writing several events at
-- once still wakes a stream once. NOTIFY is delivered at commit, so a stream
-- that wakes reads the committed events.
CREATE FUNCTION notify_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('hubwright_events', run_id::text || ' ' || newest::text)
    FROM (SELECT run_id, max(id) AS newest FROM new_events GROUP BY run_id) AS runs;
    RETURN NULL;
END
$$;

CREATE TRIGGER events_notify
    AFTER INSERT ON events
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION notify_events();
