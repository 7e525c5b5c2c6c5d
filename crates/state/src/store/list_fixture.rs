//! A database the size of a busy installation, in a few statements: the
//! fixture of `hubwright bench console`, which times the console's lists
//! against it. Rows are written as the engine would have left them (every
//! CHECK holds; each environment's phase agrees with its latest runs), so
//! the lists read them exactly as they read real ones.

use chrono::{DateTime, Utc};

use crate::{Result, Store};

/// How many of everything [`Store::insert_list_fixture`] writes.
#[derive(Debug, Clone, Copy)]
pub struct ListFixture {
    /// The workflow definition every run points at.
    pub definition_id: i64,
    /// Environments: `env-1`…, owned by `user-0`… in turn, of the templates
    /// `jupyterhub`, `lab` and `course`; of every 20, 14 `ready`, 3
    /// `deleted`, one each `failed`, `provisioning` and `tearing_down`.
    pub environments: i64,
    /// Runs in all (at least one per environment, plus a teardown for each
    /// deleted or tearing-down one): each environment's latest provisioning,
    /// then earlier attempts and runs of no environment, a fifth of them
    /// failed and a fifth cancelled. Each run has three steps.
    pub runs: i64,
    /// Distinct owners.
    pub owners: i64,
}

impl Store {
    /// Inserts `fixture` in one transaction, then refreshes the planner's
    /// statistics as autovacuum would have. For benchmarks: the database
    /// should be otherwise empty.
    pub async fn insert_list_fixture(
        &self,
        fixture: ListFixture,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let ListFixture {
            definition_id,
            environments,
            runs,
            owners,
        } = fixture;
        let mut tx = self.pool.begin().await?;
        sqlx::query!(
            r#"
            INSERT INTO environments (id, name, owner, template, parameters, cluster, namespace,
                                      phase, url, expires_at, last_error, teardown_definition_id,
                                      teardown_requested_at, teardown_requested_by,
                                      created_at, updated_at)
            SELECT gen_random_uuid(), 'env-' || n, 'user-' || (n % $3),
                   (ARRAY['jupyterhub', 'lab', 'course'])[1 + n % 3],
                   jsonb_build_object('profile', CASE WHEN n % 10 = 0 THEN 'gpu' ELSE 'small' END,
                                      'cpu_limit', 1 + n % 4),
                   'default', 'jh-env-' || n, p.phase,
                   CASE WHEN p.phase = 'ready' THEN 'https://env-' || n || '.hub.example.org/' END,
                   $4::timestamptz + make_interval(mins => (n % 1440)::int),
                   CASE WHEN p.phase = 'failed' THEN 'step hub: the release did not become ready' END,
                   CASE WHEN p.teardown THEN $1::bigint END,
                   CASE WHEN p.teardown THEN $4::timestamptz - interval '1 hour' END,
                   CASE WHEN p.teardown THEN 'user-' || (n % $3) END,
                   $4::timestamptz - make_interval(mins => n::int), $4::timestamptz - make_interval(mins => n::int)
            FROM generate_series(1, $2::bigint) AS n
            CROSS JOIN LATERAL (
                SELECT x.phase, x.phase IN ('tearing_down', 'deleted') AS teardown
                FROM (SELECT (CASE n % 20 WHEN 0 THEN 'failed' WHEN 1 THEN 'provisioning'
                                 WHEN 2 THEN 'deleted' WHEN 3 THEN 'deleted' WHEN 4 THEN 'deleted'
                                 WHEN 5 THEN 'tearing_down' ELSE 'ready' END
                             )::environment_phase AS phase) AS x
            ) AS p
            "#,
            definition_id,
            environments,
            owners,
            now,
        )
        .execute(&mut *tx)
        .await?;
        // The definitions the runs point at: the given one's steps under
        // each template and workflow the fixture uses, since a run's
        // template and workflow are its definition's.
        sqlx::query!(
            r#"
            INSERT INTO workflow_definitions (template, workflow, digest, definition)
            SELECT t, w, format('list-fixture %s %s', t, w),
                   d.definition || jsonb_build_object('template', t, 'workflow', w)
            FROM workflow_definitions d
            CROSS JOIN unnest(ARRAY['jupyterhub', 'lab', 'course', 'bench']) AS t
            CROSS JOIN unnest(ARRAY['provision', 'teardown', 'maintenance']) AS w
            WHERE d.id = $1
            ON CONFLICT (digest) DO NOTHING
            "#,
            definition_id,
        )
        .execute(&mut *tx)
        .await?;
        // Each environment's latest provisioning run, in the state its phase says.
        sqlx::query!(
            r#"
            INSERT INTO runs (id, environment_id, definition_id, input, state,
                              step_count, current_step, next_run_at, error_class, error_message,
                              created_by, created_at, started_at, finished_at, updated_at)
            SELECT gen_random_uuid(), e.id, (SELECT f.id FROM workflow_definitions f WHERE f.digest = format('list-fixture %s %s', e.template, 'provision')),
                   nullif(e.parameters, '{}'), s.state, 3,
                   CASE s.state WHEN 'succeeded' THEN 3 WHEN 'failed' THEN 2 ELSE 0 END,
                   e.created_at,
                   CASE WHEN s.state = 'failed' THEN 'permanent'::error_class END,
                   CASE WHEN s.state = 'failed' THEN e.last_error END,
                   e.owner, e.created_at,
                   CASE WHEN s.state <> 'pending' THEN e.created_at END,
                   CASE WHEN s.state <> 'pending' THEN e.created_at + interval '3 minutes' END,
                   e.created_at + interval '3 minutes'
            FROM environments e
            CROSS JOIN LATERAL (
                SELECT (CASE e.phase WHEN 'failed' THEN 'failed' WHEN 'provisioning' THEN 'pending'
                            ELSE 'succeeded' END)::run_state AS state) AS s
            "#,
        )
        .execute(&mut *tx)
        .await?;
        // Teardowns: done for deleted environments, waiting for those tearing down.
        sqlx::query!(
            r#"
            INSERT INTO runs (id, environment_id, definition_id, input, state,
                              step_count, current_step, next_run_at, created_by, created_at,
                              started_at, finished_at, updated_at)
            SELECT gen_random_uuid(), e.id, (SELECT f.id FROM workflow_definitions f WHERE f.digest = format('list-fixture %s %s', e.template, 'teardown')),
                   NULL, s.state, 3,
                   CASE s.state WHEN 'succeeded' THEN 3 ELSE 0 END, e.teardown_requested_at,
                   e.owner, e.teardown_requested_at, e.teardown_requested_at,
                   CASE WHEN s.state = 'succeeded' THEN e.teardown_requested_at + interval '1 minute' END,
                   e.teardown_requested_at + interval '1 minute'
            FROM environments e
            CROSS JOIN LATERAL (
                SELECT (CASE e.phase WHEN 'deleted' THEN 'succeeded' ELSE 'pending' END
                       )::run_state AS state) AS s
            WHERE e.phase IN ('deleted', 'tearing_down')
            "#,
        )
        .execute(&mut *tx)
        .await?;
        // The rest: earlier attempts at provisioning (older than the latest,
        // so the environments' conditions stay the latest run's) and runs of
        // no environment.
        sqlx::query!(
            r#"
            WITH numbered AS (
                SELECT id, template, owner, created_at,
                       row_number() OVER (ORDER BY created_at) AS k
                FROM environments
            ), wanted AS (
                SELECT n, (CASE n % 5 WHEN 0 THEN 'failed' WHEN 1 THEN 'cancelled'
                              ELSE 'succeeded' END)::run_state AS state
                FROM generate_series(1, greatest($1 - (SELECT count(*) FROM runs), 0)) AS n
            )
            INSERT INTO runs (id, environment_id, definition_id, input, state,
                              step_count, current_step, next_run_at, error_class, error_message,
                              cancel_requested_at, cancel_requested_by,
                              created_by, created_at, started_at, finished_at, updated_at)
            SELECT gen_random_uuid(), CASE WHEN w.n % 2 = 0 THEN e.id END,
                   (SELECT f.id FROM workflow_definitions f WHERE f.digest = format('list-fixture %s %s', CASE WHEN w.n % 2 = 0 THEN e.template ELSE 'bench' END, CASE WHEN w.n % 2 = 0 THEN 'provision' ELSE 'maintenance' END)),
                   NULL, w.state, 3,
                   CASE w.state WHEN 'succeeded' THEN 3 WHEN 'failed' THEN 2 ELSE 1 END,
                   t.at,
                   CASE WHEN w.state = 'failed' THEN 'permanent'::error_class END,
                   CASE WHEN w.state = 'failed' THEN 'step ready: the hub did not answer' END,
                   CASE WHEN w.state = 'cancelled' THEN t.at END,
                   CASE WHEN w.state = 'cancelled' THEN e.owner END,
                   e.owner, t.at, t.at, t.at + interval '2 minutes', t.at + interval '2 minutes'
            FROM wanted w
            JOIN numbered e ON e.k = 1 + w.n % $2
            CROSS JOIN LATERAL (SELECT e.created_at - make_interval(secs => w.n) AS at) AS t
            "#,
            runs,
            environments,
        )
        .execute(&mut *tx)
        .await?;
        // Steps as the engine leaves them: those a run moved past in
        // `step_history`, the one it is at in its row.
        sqlx::query!(
            r#"
            INSERT INTO step_history (run_id, idx, name, kind, state, attempts, output,
                                      started_at, finished_at, updated_at)
            SELECT r.id, i, w.definition -> 'steps' -> i ->> 'name',
                   w.definition -> 'steps' -> i ->> 'kind', 'succeeded', 1, '{}',
                   r.started_at, r.finished_at, r.updated_at
            FROM runs r
            JOIN workflow_definitions w ON w.id = r.definition_id
            CROSS JOIN generate_series(0, r.step_count - 1) AS i
            WHERE i < least(r.current_step, r.step_count - 1)
            "#,
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query!(
            r#"
            UPDATE runs
            SET step_attempts = CASE WHEN state IN ('succeeded', 'failed') THEN 1 ELSE 0 END,
                step_output = CASE WHEN state = 'succeeded' THEN '{}'::jsonb END,
                step_error_class = CASE WHEN state = 'failed' THEN error_class END,
                step_error_message = CASE WHEN state = 'failed' THEN error_message END,
                step_started_at = CASE WHEN state IN ('succeeded', 'failed') THEN started_at END
            "#,
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        // What autovacuum would have done by the time a real database held this much.
        sqlx::query("ANALYZE environments, runs, step_history")
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
