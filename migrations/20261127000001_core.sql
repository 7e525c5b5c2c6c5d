-- The durable core: environments, workflow definitions, runs, their steps and the
-- append-only event timeline. The state machine lives in these enums and CHECKs;
-- docs/state_machine.md draws every edge.

CREATE TYPE environment_phase AS ENUM
    ('requested', 'provisioning', 'ready', 'failed', 'tearing_down', 'deleted');
CREATE TYPE run_state AS ENUM
    ('pending', 'running', 'waiting', 'succeeded', 'failed', 'cancelled');
CREATE TYPE step_state AS ENUM
    ('pending', 'running', 'waiting', 'succeeded', 'failed', 'cancelled');
CREATE TYPE error_class AS ENUM ('retryable', 'permanent');

CREATE TABLE environments (
    id          uuid PRIMARY KEY,
    name        text NOT NULL
                CONSTRAINT environments_name_dns_label
                CHECK (name ~ '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' AND length(name) <= 63),
    owner       text NOT NULL,
    template    text NOT NULL,
    parameters  jsonb NOT NULL DEFAULT '{}',
    cluster     text NOT NULL,
    namespace   text,
    phase       environment_phase NOT NULL DEFAULT 'requested',
    url         text,
    expires_at  timestamptz NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);

-- A name is unique per owner among environments that still exist.
CREATE UNIQUE INDEX environments_owner_name_live
    ON environments (owner, name) WHERE phase <> 'deleted';
CREATE INDEX environments_expiry ON environments (expires_at) WHERE phase <> 'deleted';

-- Workflow definitions are immutable and stored once per content digest; a run
-- points at the exact definition it started with, so editing a workflow file never
-- changes a run in flight.
CREATE TABLE workflow_definitions (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    template    text NOT NULL,
    workflow    text NOT NULL,
    digest      text NOT NULL CONSTRAINT workflow_definitions_digest_key UNIQUE,
    definition  jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE runs (
    id                  uuid PRIMARY KEY,
    environment_id      uuid REFERENCES environments (id),
    template            text NOT NULL,
    workflow            text NOT NULL,
    definition_id       bigint NOT NULL REFERENCES workflow_definitions (id),
    input               jsonb NOT NULL DEFAULT '{}',
    state               run_state NOT NULL DEFAULT 'pending',
    step_count          integer NOT NULL CHECK (step_count > 0),
    -- Index of the first step whose outcome is not committed: where a resumed run
    -- starts. Equal to step_count once every step has succeeded.
    current_step        integer NOT NULL DEFAULT 0
                        CHECK (current_step >= 0 AND current_step <= step_count),
    -- When a pending or waiting run may be claimed (new, retry backoff, poll).
    next_run_at         timestamptz NOT NULL,
    lease_owner         text,
    lease_expires_at    timestamptz,
    -- Fencing token: bumped by every claim. Every write a worker makes about the
    -- run carries the token it claimed with, so a worker that lost its lease
    -- cannot overwrite the work of the one that took over.
    lease_token         bigint NOT NULL DEFAULT 0,
    -- How many times the run has been claimed (rescues included).
    claims              integer NOT NULL DEFAULT 0,
    cancel_requested_at timestamptz,
    cancel_requested_by text,
    error_class         error_class,
    error_message       text,
    created_at          timestamptz NOT NULL,
    started_at          timestamptz,
    finished_at         timestamptz,
    updated_at          timestamptz NOT NULL,

    CONSTRAINT runs_lease_iff_running CHECK (
        (state = 'running') = (lease_owner IS NOT NULL AND lease_expires_at IS NOT NULL)),
    CONSTRAINT runs_finished_iff_terminal CHECK (
        (state IN ('succeeded', 'failed', 'cancelled')) = (finished_at IS NOT NULL)),
    CONSTRAINT runs_failed_has_error CHECK (
        state <> 'failed' OR (error_class IS NOT NULL AND error_message IS NOT NULL)),
    CONSTRAINT runs_succeeded_ran_every_step CHECK (
        state <> 'succeeded' OR current_step = step_count)
);

-- The claim query's path: only runnable rows, in claim order.
CREATE INDEX runs_claimable ON runs (next_run_at, id)
    WHERE state IN ('pending', 'waiting');
-- The rescuer's path: running runs whose lease may have expired.
CREATE INDEX runs_leases ON runs (lease_expires_at) WHERE state = 'running';
CREATE INDEX runs_environment ON runs (environment_id, created_at)
    WHERE environment_id IS NOT NULL;
-- At most one active run per environment: a second provisioning or teardown of
-- the same environment is refused by the database, not by timing.
CREATE UNIQUE INDEX runs_one_active_per_environment ON runs (environment_id)
    WHERE environment_id IS NOT NULL AND state IN ('pending', 'running', 'waiting');

CREATE TABLE steps (
    run_id          uuid NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    idx             integer NOT NULL CHECK (idx >= 0),
    name            text NOT NULL,
    kind            text NOT NULL,
    state           step_state NOT NULL DEFAULT 'pending',
    -- Executions that counted against the retry policy ("not ready yet" polls do not).
    attempts        integer NOT NULL DEFAULT 0,
    polls           integer NOT NULL DEFAULT 0,
    output          jsonb,
    error_class     error_class,
    error_message   text,
    error_detail    jsonb,
    started_at      timestamptz,
    finished_at     timestamptz,
    updated_at      timestamptz,
    PRIMARY KEY (run_id, idx),
    CONSTRAINT steps_output_iff_succeeded CHECK ((state = 'succeeded') = (output IS NOT NULL)),
    CONSTRAINT steps_failed_has_error CHECK (
        state <> 'failed' OR (error_class IS NOT NULL AND error_message IS NOT NULL))
);

-- Append-only timeline per run: what the UI, `--wait` and audit read.
-- No foreign key to runs: events are written only by the statements that write
-- their run, in the same statement, and the key check cost 18% of Postgres' CPU
-- in the W1 benchmark (three events per run). Deleting a run deletes its events
-- explicitly.
CREATE TABLE events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id      uuid NOT NULL,
    step_idx    integer,
    kind        text NOT NULL,
    actor       text NOT NULL,
    message     text NOT NULL,
    data        jsonb,
    at          timestamptz NOT NULL
);
CREATE INDEX events_run ON events (run_id, id);
