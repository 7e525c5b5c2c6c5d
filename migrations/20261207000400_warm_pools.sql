-- Warm pools (docs/decisions/0024-warm-pools.md): a template's pool keeps a
-- few environments provisioned ahead of any request; a request it can serve
-- takes one over in one transaction.
--
-- A member is an environment owned by `pool:<template>` with `pool` and
-- `pool_digest` set and `claimed_at` NULL. A claim gives it to its requester
-- and sets `claimed_at`; `pool` stays, so claimed environments remain
-- countable by the pool they came from.
ALTER TABLE environments
    ADD COLUMN pool text,
    -- What the member was built from; members of an older digest are recycled.
    ADD COLUMN pool_digest text,
    ADD COLUMN claimed_at timestamptz,
    ADD CONSTRAINT environments_pool_digest_with_pool
        CHECK ((pool IS NULL) = (pool_digest IS NULL)),
    ADD CONSTRAINT environments_claimed_from_a_pool
        CHECK (claimed_at IS NULL OR pool IS NOT NULL);

-- The claim's and the filler's lookup: unclaimed live members of one pool.
CREATE INDEX environments_pool_members
    ON environments (pool, cluster, created_at)
    WHERE pool IS NOT NULL AND claimed_at IS NULL AND phase <> 'deleted';

-- Claims and misses per pool, counted in the request's transaction.
CREATE TABLE pool_counters (
    template text NOT NULL,
    cluster  text NOT NULL,
    claims   bigint NOT NULL DEFAULT 0 CHECK (claims >= 0),
    misses   bigint NOT NULL DEFAULT 0 CHECK (misses >= 0),
    PRIMARY KEY (template, cluster)
);
