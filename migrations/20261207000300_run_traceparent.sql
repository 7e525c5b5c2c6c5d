-- The W3C trace context of the request that created a run (its
-- `traceparent`), when tracing was on: the worker's spans for the run are
-- children of it, in whichever process and however much later the run
-- executes, and the run's trace id is read from it
-- (docs/decisions/0023-tracing.md). NULL for runs made without a trace.
-- A nullable column without a default: adding it rewrites nothing.
ALTER TABLE runs ADD COLUMN traceparent text
    CONSTRAINT runs_traceparent_format
    CHECK (traceparent ~ '^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$');
