//! `GET /v1/environments?cluster=`: operators list what runs on one cluster.

use super::*;

#[tokio::test]
async fn the_cluster_filter_lists_only_that_clusters_environments() {
    let db = TestDatabase::create().await;
    let dir = scratch_dir("env-clusters");
    write_workflow(&dir, "lab", LAB);
    // Beside the workflows, not among them: every file there is a workflow.
    let clusters = scratch_dir("env-clusters-file").join("clusters.yaml");
    std::fs::write(&clusters, "clusters:\n  east: {}\n  west: {}\n").unwrap();
    let clusters = clusters.display().to_string();
    let server = ApiServer::start(&db, &dir, &["--clusters", &clusters]).await;
    let api = Api { db, server };
    let alice = api.token("alice", Role::Developer).await;
    let ops = api.token("ops", Role::Operator).await;
    for (name, cluster) in [("a", "east"), ("b", "west"), ("c", "east")] {
        let created = api
            .create(
                &alice,
                json!({"name": name, "template": "lab", "cluster": cluster}),
            )
            .await;
        assert_eq!(created.status, StatusCode::ACCEPTED, "{:#}", created.body);
    }

    let east = api
        .call("GET", "/v1/environments?cluster=east", &ops, None)
        .await;
    assert_eq!(east.status, StatusCode::OK, "{:#}", east.body);
    assert_eq!(names(&east), ["a", "c"]);
    let west = api
        .call(
            "GET",
            "/v1/environments?cluster=west&owner=alice",
            &ops,
            None,
        )
        .await;
    assert_eq!(names(&west), ["b"], "filters combine");
    let own = api
        .call("GET", "/v1/environments?cluster=west", &alice, None)
        .await;
    assert_eq!(names(&own), ["b"], "a developer filters their own");
    let unknown = api
        .call("GET", "/v1/environments?cluster=north", &ops, None)
        .await;
    assert_eq!(unknown.status, StatusCode::OK);
    assert!(names(&unknown).is_empty(), "no environment on it");
    api.finish().await;
}
