-- Every worker process says it is alive here, so operators see the workers
-- that hold no lease too (an idle fleet, a worker that started but never
-- claims), which version each runs, and when each was last heard from. A
-- row is the process's own: inserted at start, touched every heartbeat,
-- marked stopped on a clean shutdown; rows silent for a day are removed by
-- the next worker to start.
CREATE TABLE workers (
    id                  text PRIMARY KEY,
    host                text NOT NULL,
    pid                 integer NOT NULL,
    version             text NOT NULL,
    concurrency         integer NOT NULL,
    heartbeat_seconds   integer NOT NULL CHECK (heartbeat_seconds > 0),
    started_at          timestamptz NOT NULL,
    last_seen_at        timestamptz NOT NULL,
    stopped_at          timestamptz
);
