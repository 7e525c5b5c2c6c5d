-- The W3C trace context of whatever asked for an environment's teardown
-- (a DELETE request, the scheduler's expiry pass, a step), when tracing
-- was on: the teardown run is started with it as its `traceparent`, now or
-- later (when the environment's running run stops), so its steps join the
-- trace of the request or pass that asked (docs/decisions/0023-tracing.md).
-- NULL when nothing traced asked. Nullable without a default: adding it
-- rewrites nothing.
ALTER TABLE environments ADD COLUMN teardown_traceparent text
    CONSTRAINT environments_teardown_traceparent_format
    CHECK (teardown_traceparent ~ '^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$');
