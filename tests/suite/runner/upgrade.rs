//! Upgrading a database whose steps were all rows of `steps` (before
//! migration 20261212000100) to the current step in the run's row: every
//! run's steps and timeline read the same after as before.

use std::path::PathBuf;

use hubwright_testkit::TestDatabase;
use serde_json::Value;
use sqlx::PgPool;

/// The migration that moved the current step into the run's row.
const CURRENT_STEP_IN_RUN_ROW: &str = "20261212000100";

/// The migration files, in order, split at [`CURRENT_STEP_IN_RUN_ROW`]:
/// those before it and those from it on.
fn migrations() -> (Vec<PathBuf>, Vec<PathBuf>) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../migrations");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "sql"))
        .collect();
    files.sort();
    files.into_iter().partition(|path| {
        path.file_name().unwrap().to_string_lossy().as_ref() < CURRENT_STEP_IN_RUN_ROW
    })
}

async fn apply(pool: &PgPool, files: &[PathBuf]) {
    for file in files {
        let sql = std::fs::read_to_string(file).unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(pool)
            .await
            .unwrap_or_else(|err| panic!("{}: {err}", file.display()));
    }
}

/// What the engine before the upgrade left, one run of each kind, every
/// step a row: a three-step run at its second step (the first succeeded
/// with a URL, the second running its second attempt after a retryable
/// error, the third pending), a one-step run that succeeded, a two-step run
/// that failed at its first step, a two-step run cancelled while pending.
const BEFORE: &str = r#"
INSERT INTO workflow_definitions (id, template, workflow, digest, definition)
OVERRIDING SYSTEM VALUE VALUES
 (1, 'lab', 'provision', 'd1', '{"steps": [{"name": "namespace", "kind": "namespace"},
   {"name": "helm", "kind": "helm"}, {"name": "ready", "kind": "health"}]}'),
 (2, 'lab', 'noop', 'd2', '{"steps": [{"name": "only", "kind": "noop"}]}'),
 (3, 'lab', 'pair', 'd3', '{"steps": [{"name": "first", "kind": "noop"},
   {"name": "second", "kind": "noop"}]}');
SELECT setval('events_id_seq', 100);
INSERT INTO runs (id, template, workflow, definition_id, input, state, step_count, current_step,
                  next_run_at, lease_owner, lease_expires_at, lease_token, claims, error_class,
                  error_message, created_at, started_at, finished_at, updated_at, created_by,
                  created_event_id, finished_event_id, cancel_requested_at, cancel_requested_by)
VALUES
 ('00000000-0000-7000-8000-000000000001', 'lab', 'provision', 1, '{}', 'running', 3, 1,
  '2026-01-01 00:00:05+00', 'worker-b', '2026-01-01 00:01:00+00', 3, 3, NULL, NULL,
  '2026-01-01 00:00:00+00', '2026-01-01 00:00:01+00', NULL, '2026-01-01 00:00:09+00', 'alice',
  1, NULL, NULL, NULL),
 ('00000000-0000-7000-8000-000000000002', 'lab', 'noop', 2, '{}', 'succeeded', 1, 1,
  '2026-01-01 00:00:00+00', NULL, NULL, 1, 1, NULL, NULL,
  '2026-01-01 00:00:00+00', '2026-01-01 00:00:01+00', '2026-01-01 00:00:02+00',
  '2026-01-01 00:00:02+00', 'bob', 2, 21, NULL, NULL),
 ('00000000-0000-7000-8000-000000000003', 'lab', 'pair', 3, '{}', 'failed', 2, 0,
  '2026-01-01 00:00:00+00', NULL, NULL, 1, 1, 'permanent', 'no such cluster',
  '2026-01-01 00:00:00+00', '2026-01-01 00:00:01+00', '2026-01-01 00:00:03+00',
  '2026-01-01 00:00:03+00', 'carol', 3, NULL, NULL, NULL),
 ('00000000-0000-7000-8000-000000000004', 'lab', 'pair', 3, '{}', 'cancelled', 2, 0,
  '2026-01-01 00:00:00+00', NULL, NULL, 0, 0, NULL, NULL,
  '2026-01-01 00:00:00+00', NULL, '2026-01-01 00:00:04+00',
  '2026-01-01 00:00:04+00', 'dave', 4, NULL, '2026-01-01 00:00:04+00', 'dave');
INSERT INTO steps (run_id, idx, name, kind, state, attempts, polls, output, error_class,
                   error_message, error_detail, started_at, finished_at, updated_at,
                   started_event_id, finished_event_id, restarted_at, started_by, finished_by,
                   started_at_boundary)
VALUES
 ('00000000-0000-7000-8000-000000000001', 0, 'namespace', 'namespace', 'succeeded', 1, 0,
  '{"url": "https://lab.example.org/"}', NULL, NULL, NULL, '2026-01-01 00:00:01+00',
  '2026-01-01 00:00:02+00', '2026-01-01 00:00:02+00', 10, 11, NULL, 'worker-a', NULL, NULL),
 ('00000000-0000-7000-8000-000000000001', 1, 'helm', 'helm', 'running', 2, 1, NULL,
  'retryable', 'the API server timed out', '{"status": 504}', '2026-01-01 00:00:02+00', NULL,
  '2026-01-01 00:00:09+00', 18, NULL, '2026-01-01 00:00:08+00', 'worker-b', NULL, NULL),
 ('00000000-0000-7000-8000-000000000001', 2, 'ready', 'health', 'pending', 0, 0, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 ('00000000-0000-7000-8000-000000000002', 0, 'only', 'noop', 'succeeded', 1, 0, '{}',
  NULL, NULL, NULL, '2026-01-01 00:00:01+00', '2026-01-01 00:00:02+00',
  '2026-01-01 00:00:02+00', 19, 20, NULL, 'worker-a', NULL, NULL),
 ('00000000-0000-7000-8000-000000000003', 0, 'first', 'noop', 'failed', 1, 0, NULL,
  'permanent', 'no such cluster', '{"cluster": "nowhere"}', '2026-01-01 00:00:01+00',
  '2026-01-01 00:00:03+00', '2026-01-01 00:00:03+00', 22, NULL, NULL, 'worker-a', NULL, NULL),
 ('00000000-0000-7000-8000-000000000003', 1, 'second', 'noop', 'pending', 0, 0, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 ('00000000-0000-7000-8000-000000000004', 0, 'first', 'noop', 'cancelled', 0, 0, NULL,
  NULL, NULL, NULL, NULL, NULL, '2026-01-01 00:00:04+00', NULL, NULL, NULL, NULL, NULL, NULL),
 ('00000000-0000-7000-8000-000000000004', 1, 'second', 'noop', 'cancelled', 0, 0, NULL,
  NULL, NULL, NULL, NULL, NULL, '2026-01-01 00:00:04+00', NULL, NULL, NULL, NULL, NULL, NULL);
INSERT INTO events (id, run_id, step_idx, kind, actor, message, data, at)
OVERRIDING SYSTEM VALUE VALUES
 (17, '00000000-0000-7000-8000-000000000001', 1, 'step_started', 'worker-a', NULL,
  '{"attempt": 1}', '2026-01-01 00:00:02+00'),
 (23, '00000000-0000-7000-8000-000000000003', NULL, 'run_failed', 'worker-a',
  'run failed; an operator can retry it', NULL, '2026-01-01 00:00:03+00'),
 (24, '00000000-0000-7000-8000-000000000004', NULL, 'run_cancelled', 'dave',
  'run cancelled by dave', NULL, '2026-01-01 00:00:04+00');
"#;

/// Every run's steps (all but `updated_at`, which the view takes from the
/// run) and timeline, in order.
async fn readings(pool: &PgPool) -> (Vec<Value>, Vec<Value>) {
    let steps =
        sqlx::query_scalar("SELECT to_jsonb(s) - 'updated_at' FROM steps s ORDER BY run_id, idx")
            .fetch_all(pool)
            .await
            .unwrap();
    let timeline = sqlx::query_scalar("SELECT to_jsonb(t) FROM run_timeline t ORDER BY run_id, id")
        .fetch_all(pool)
        .await
        .unwrap();
    (steps, timeline)
}

#[tokio::test]
async fn every_runs_steps_and_timeline_read_the_same_after_the_upgrade() {
    let db = TestDatabase::create().await;
    let pool = db.store.pool();
    sqlx::raw_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        .execute(pool)
        .await
        .unwrap();
    let (before, from) = migrations();
    assert!(
        !from.is_empty(),
        "{CURRENT_STEP_IN_RUN_ROW} is among the migrations"
    );
    apply(pool, &before).await;
    sqlx::raw_sql(BEFORE).execute(pool).await.unwrap();
    let (steps_before, timeline_before) = readings(pool).await;
    assert_eq!(steps_before.len(), 8);

    apply(pool, &from).await;

    let (steps_after, timeline_after) = readings(pool).await;
    assert_eq!(steps_after, steps_before);
    assert_eq!(timeline_after, timeline_before);
    // Stored now: only the step a run moved past.
    let stored: Vec<(String, i32)> =
        sqlx::query_as("SELECT run_id::text, idx FROM step_history ORDER BY run_id, idx")
            .fetch_all(pool)
            .await
            .unwrap();
    assert_eq!(
        stored,
        [("00000000-0000-7000-8000-000000000001".to_owned(), 0)]
    );
}
