//! What environments keep: every run while the environment lives (its
//! teardown asks what they called out), and once it is deleted its row, its
//! own events, its latest run and its latest provisioning run (what its view
//! shows); only older runs of a deleted environment go.

use hubwright_state::model::EnvironmentPhase;
use hubwright_state::store::environments::NewEnvironment;

use super::*;

impl Lab {
    /// Requests an environment of `lab` at the clock's time.
    async fn request(&self) -> Uuid {
        let id = hubwright_state::store::enqueue::new_id();
        let name = format!("e{}", &id.simple().to_string()[24..]);
        self.store()
            .request_environment(
                &NewEnvironment {
                    id,
                    name: &name,
                    owner: "alice",
                    template: "lab",
                    cluster: "default",
                    namespace: &format!("jh-{name}"),
                    parameters: json!({}),
                    expires_at: self.now() + chrono::Duration::days(300),
                    traceparent: None,
                },
                self.catalog.definition("lab", "provision").unwrap(),
                None,
                self.now(),
            )
            .await
            .unwrap();
        id
    }

    async fn runs_of(&self, environment: Uuid) -> Vec<Uuid> {
        sqlx::query_scalar("SELECT id FROM runs WHERE environment_id = $1 ORDER BY id")
            .bind(environment)
            .fetch_all(self.store().pool())
            .await
            .unwrap()
    }

    async fn environment_events(&self, environment: Uuid) -> i64 {
        self.count(
            "SELECT count(*) FROM events WHERE environment_id = $1",
            environment,
        )
        .await
    }
}

#[tokio::test]
async fn a_deleted_environment_keeps_its_row_events_and_latest_runs_and_a_live_one_keeps_every_run()
{
    let lab = Lab::new().await;
    let t0 = lab.now();
    // Made first, so its id sorts before every run below.
    let earlier = hubwright_state::store::enqueue::new_id();
    let deleted = lab.request().await;
    let live = lab.request().await;
    let provisioning = lab.runs_of(deleted).await;
    lab.drain(&[provisioning.clone(), lab.runs_of(live).await].concat())
        .await;
    let (_, teardown) = lab.catalog.definition("lab", "teardown").unwrap();
    lab.store()
        .request_teardown(deleted, teardown, "alice", t0, None)
        .await
        .unwrap();
    let runs = lab.runs_of(deleted).await;
    lab.drain(&runs).await;
    assert_eq!(
        lab.store().environment(deleted).await.unwrap().phase,
        EnvironmentPhase::Deleted
    );
    // An earlier provisioning attempt that failed, as it would have been left:
    // neither the environment's latest run nor its latest provisioning run.
    sqlx::query(
        "INSERT INTO runs (id, environment_id, definition_id, state,
                           step_count, next_run_at, created_by, error_class, error_message,
                           created_at, finished_at, updated_at)
         SELECT $1, $2, definition_id, 'failed', 2, $3, 'alice',
                'permanent', 'gave up', $3, $3, $3
         FROM runs WHERE id = $4",
    )
    .bind(earlier)
    .bind(deleted)
    .bind(t0 - chrono::Duration::hours(1))
    .bind(provisioning[0])
    .execute(lab.store().pool())
    .await
    .unwrap();
    let view_before = lab.store().environment(deleted).await.unwrap();
    let events_before = lab.environment_events(deleted).await;
    assert!(events_before > 0, "the teardown request is on its timeline");

    lab.clock.advance(chrono::Duration::days(31));
    let pass = lab.retention(1_000).pass().await.unwrap();

    assert_eq!(pass.deleted.runs, 1, "only the earlier attempt: {pass:?}");
    assert_eq!(lab.state(earlier).await, None);
    assert_eq!(
        lab.runs_of(deleted).await,
        runs,
        "its provisioning and teardown runs stay"
    );
    let view_after = lab.store().environment(deleted).await.unwrap();
    assert_eq!(view_after.phase, EnvironmentPhase::Deleted);
    assert_eq!(view_after.conditions, view_before.conditions);
    assert_eq!(
        lab.store().latest_run_id(deleted).await.unwrap(),
        runs.last().copied()
    );
    assert_eq!(lab.environment_events(deleted).await, events_before);
    let live_runs = lab.runs_of(live).await;
    assert_eq!(live_runs.len(), 1);
    assert_eq!(
        lab.traces(live_runs[0]).await.0,
        1,
        "a live environment's run stays"
    );
    lab.db.drop_now().await;
}
