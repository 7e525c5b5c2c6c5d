-- Approvals: a run's `approval` step parks until someone the step names
-- decides. One row per run and step, created when the step first runs; the
-- decision wakes the run (`next_run_at = now`), and the step reads the row on
-- its next execution. See docs/decisions/0016-approvals.md.
CREATE TYPE approval_state AS ENUM ('pending', 'approved', 'denied', 'expired');

CREATE TABLE approvals (
    id                  uuid PRIMARY KEY,
    run_id              uuid NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    step_idx            integer NOT NULL CHECK (step_idx >= 0),
    step_name           text NOT NULL,
    environment_id      uuid REFERENCES environments (id) ON DELETE CASCADE,
    -- The environment's owner: the one who may not decide unless allowed.
    requested_by        text NOT NULL,
    -- Who may decide: anyone with at least this role, or in any of these groups.
    approver_role       api_role,
    approver_groups     text[] NOT NULL DEFAULT '{}',
    allow_self_approval boolean NOT NULL DEFAULT false,
    state               approval_state NOT NULL DEFAULT 'pending',
    decided_by          text,
    comment             text,
    deadline            timestamptz NOT NULL,
    created_at          timestamptz NOT NULL,
    decided_at          timestamptz,
    updated_at          timestamptz NOT NULL,

    CONSTRAINT approvals_one_per_step UNIQUE (run_id, step_idx),
    CONSTRAINT approvals_names_approvers CHECK (
        approver_role IS NOT NULL OR cardinality(approver_groups) > 0),
    CONSTRAINT approvals_decided_iff_not_pending CHECK (
        (state = 'pending') = (decided_at IS NULL)),
    CONSTRAINT approvals_decision_has_decider CHECK (
        state NOT IN ('approved', 'denied') OR decided_by IS NOT NULL)
);

-- The approvers' queue: pending ones, newest first.
CREATE INDEX approvals_pending ON approvals (id) WHERE state = 'pending';

-- Webhooks announce pending approvals too: the deliverer's read covers them.
DROP INDEX events_lifecycle;
CREATE INDEX events_lifecycle ON events (id)
    WHERE kind IN ('expiry_warning', 'environment_expired', 'approval_pending');
