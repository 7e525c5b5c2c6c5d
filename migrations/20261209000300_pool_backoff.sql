-- A pool whose members keep failing waits before provisioning the next one,
-- longer after each failure, instead of starting one on every scheduler pass
-- (docs/operations.md, "Warm pools"). One row per pool and cluster while it
-- waits; the fill that finds a member made since the last failure ready
-- deletes it. Written only by `fill_pool`, under the pool's advisory lock.
CREATE TABLE pool_backoff (
    template text NOT NULL,
    cluster text NOT NULL,
    -- Failed members since the pool last had a ready one.
    failures integer NOT NULL CHECK (failures > 0),
    last_failure_at timestamptz NOT NULL,
    -- No member is started before this.
    next_fill_at timestamptz NOT NULL,
    PRIMARY KEY (template, cluster)
);
