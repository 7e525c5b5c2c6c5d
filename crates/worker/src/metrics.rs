//! Every metric the worker, the scheduler and their maintenance loops record,
//! by name, with its `# HELP` text: call sites use these names, and
//! [`describe`] gives each its description once a recorder is installed.
//! The API's own metrics are listed in `hubwright_api::metrics`;
//! docs/operations.md ("Metrics") lists both.

/// Counter: step executions by `kind`, `outcome` and `reason`.
pub const STEP_EXECUTIONS: &str = "hubwright_step_executions_total";
/// Counter: failed step executions by `kind` and `reason`.
pub const STEP_FAILURES: &str = "hubwright_step_failures_total";
/// Histogram: how long one execution of a step took, by `kind`.
pub const STEP_DURATION: &str = "hubwright_step_duration_seconds";
/// Histogram: how long a due run waited for a worker to claim it.
pub const QUEUE_WAIT: &str = "hubwright_queue_wait_seconds";
/// Histogram: from an environment's request to ready, by `template`.
pub const TIME_TO_READY: &str = "hubwright_time_to_ready_seconds";
/// Counter: runs returned to the queue after their worker's lease ran out.
pub const RUNS_RESCUED: &str = "hubwright_runs_rescued_total";
/// Gauge: when this worker's claim loop last went round (Unix seconds).
pub const WORKER_HEARTBEAT: &str = "hubwright_worker_heartbeat_timestamp_seconds";
/// Gauge: when this scheduler's loop last went round (Unix seconds).
pub const SCHEDULER_HEARTBEAT: &str = "hubwright_scheduler_heartbeat_timestamp_seconds";
/// Counter: environments the scheduler expired (teardown requested).
pub const ENVIRONMENTS_EXPIRED: &str = "hubwright_environments_expired_total";
/// Counter: expiry warnings recorded, by lead time `within`.
pub const EXPIRY_WARNINGS: &str = "hubwright_expiry_warnings_total";
/// Gauge: environments expiring within each lead time, as of the last sweep.
pub const ENVIRONMENT_EXPIRING: &str = "hubwright_environment_expiring";
/// Counter: webhook deliveries by `outcome` (`delivered`, `failed`).
pub const WEBHOOK_DELIVERIES: &str = "hubwright_webhook_deliveries_total";
/// Counter: audit entries deleted past their retention.
pub const AUDIT_PRUNED: &str = "hubwright_audit_entries_pruned_total";
/// Counter: rows of finished runs deleted past their retention, by `table`.
pub const RETENTION_ROWS_DELETED: &str = "hubwright_retention_rows_deleted_total";
/// Counter: environments whose namespace expiry label was brought up to an
/// extension, by `outcome` (`relabelled`, `failed`).
pub const EXPIRY_RELABELS: &str = "hubwright_expiry_relabels_total";

/// Gives every metric above its `# HELP` text. Call after installing the
/// recorder: descriptions go to the recorder installed at the time.
pub fn describe() {
    use ::metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        STEP_EXECUTIONS,
        "Step executions by kind, outcome (done, wait, retry, fail, cancelled, lease_lost) and reason (none, or <class>_<cause>; docs/operations.md)."
    );
    describe_counter!(
        STEP_FAILURES,
        "Failed step executions (retried, failed, or abandoned on a lost lease) by kind and reason (<class>_<cause>)."
    );
    describe_histogram!(
        STEP_DURATION,
        "Seconds one execution of a step took, by kind."
    );
    describe_histogram!(
        QUEUE_WAIT,
        "Seconds a run waited between becoming due and being claimed by a worker."
    );
    describe_histogram!(
        TIME_TO_READY,
        "Seconds from an environment's request to its provisioning run succeeding, by template."
    );
    describe_counter!(
        RUNS_RESCUED,
        "Runs returned to the queue (or cancelled) because their worker's lease ran out."
    );
    describe_gauge!(
        WORKER_HEARTBEAT,
        "Unix time at which this worker's claim loop last went round."
    );
    describe_gauge!(
        SCHEDULER_HEARTBEAT,
        "Unix time at which this scheduler's loop last went round."
    );
    describe_counter!(
        ENVIRONMENTS_EXPIRED,
        "Environments the scheduler expired (their teardown requested)."
    );
    describe_counter!(
        EXPIRY_WARNINGS,
        "Expiry warnings recorded, by lead time (within)."
    );
    describe_gauge!(
        ENVIRONMENT_EXPIRING,
        "Environments expiring within each lead time, read from the database at the scheduler's last sweep (equal on every scheduler replica)."
    );
    describe_counter!(
        WEBHOOK_DELIVERIES,
        "Webhook deliveries by outcome (delivered, failed)."
    );
    describe_counter!(AUDIT_PRUNED, "Audit entries deleted past their retention.");
    describe_counter!(
        RETENTION_ROWS_DELETED,
        "Rows of finished runs deleted past their retention, by table."
    );
    describe_counter!(
        EXPIRY_RELABELS,
        "Environments whose namespace's expiry label was brought up to an extension (relabelled), or whose cluster failed (failed)."
    );
}
