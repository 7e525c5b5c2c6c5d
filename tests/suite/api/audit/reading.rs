//! Who reads the trail and how: admins only; filters, cursors newest first;
//! the export as JSON lines with the same filters.

use super::*;
use chrono::{Duration, TimeZone, Utc};

#[tokio::test]
async fn only_admins_read_the_trail_and_its_export() {
    let audited = Audited::start().await;
    let alice = token(&audited.db.store, "alice", Role::Developer).await;
    let ops = token(&audited.db.store, "ops", Role::Operator).await;
    for who in [&alice, &ops] {
        for path in ["/v1/audit", "/v1/audit/export"] {
            let refused = audited.server.get(path).token(who).send().await;
            refused.assert_problem(StatusCode::FORBIDDEN, "forbidden");
            assert!(refused.detail().contains("admin"), "{}", refused.detail());
        }
    }
    let anonymous = audited.server.get("/v1/audit").send().await;
    anonymous.assert_problem(StatusCode::UNAUTHORIZED, "unauthorized");
    audited.finish().await;
}

#[tokio::test]
async fn filters_narrow_the_trail_and_cursors_page_through_it_newest_first() {
    let audited = Audited::start().await;
    let store = &audited.db.store;
    let day = Utc.with_ymd_and_hms(2026, 12, 6, 0, 0, 0).unwrap();
    // Five days: alice creates each day, bob's retry fails on days 1 and 3.
    for n in 0..5 {
        let at = day + Duration::days(n);
        store
            .record_audit(
                &record(at, "alice", "environment.create", true)
                    .target("environment", format!("env-{n}")),
            )
            .await
            .unwrap();
        if n % 2 == 1 {
            store
                .record_audit(
                    &record(at, "bob", "run.retry", false).target("run", format!("run-{n}")),
                )
                .await
                .unwrap();
        }
    }
    let summaries = |entries: Vec<Value>| -> Vec<(String, String)> {
        entries
            .iter()
            .map(|e| {
                (
                    e["actor"].as_str().unwrap().to_owned(),
                    e["target_id"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let pair = |actor: &str, target: &str| (actor.to_owned(), target.to_owned());
    assert_eq!(
        summaries(audited.entries("actor=bob").await),
        [pair("bob", "run-3"), pair("bob", "run-1")]
    );
    assert_eq!(
        summaries(audited.entries("outcome=failure").await),
        [pair("bob", "run-3"), pair("bob", "run-1")]
    );
    assert_eq!(
        summaries(
            audited
                .entries("action=environment.create&target=env-2")
                .await
        ),
        [pair("alice", "env-2")]
    );
    let since = (day + Duration::days(1)).to_rfc3339().replace('+', "%2B");
    let until = (day + Duration::days(3)).to_rfc3339().replace('+', "%2B");
    assert_eq!(
        summaries(
            audited
                .entries(&format!("actor=alice&since={since}&until={until}"))
                .await
        ),
        [pair("alice", "env-2"), pair("alice", "env-1")],
        "since is inclusive, until exclusive"
    );

    // Pages of 3 cover all 7 entries once, newest first.
    let mut seen = Vec::new();
    let mut cursor: Option<i64> = None;
    loop {
        let path = match cursor {
            Some(c) => format!("/v1/audit?limit=3&cursor={c}"),
            None => "/v1/audit?limit=3".to_owned(),
        };
        let page = audited.server.get(&path).token(&audited.root).send().await;
        assert_eq!(page.status, StatusCode::OK, "{:#}", page.body);
        seen.extend(ids(&page));
        match page.body["next_cursor"].as_i64() {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen.len(), 7, "{seen:?}");
    assert!(
        seen.windows(2).all(|w| w[0] > w[1]),
        "newest first: {seen:?}"
    );

    for (query, parameter) in [
        ("outcome=ok", "outcome"),
        ("since=yesterday", "since"),
        ("limit=0", "limit"),
        ("cursor=abc", "cursor"),
        ("colour=red", "colour"),
    ] {
        let bad = audited
            .server
            .get(&format!("/v1/audit?{query}"))
            .token(&audited.root)
            .send()
            .await;
        bad.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-request");
        assert_eq!(bad.body["errors"][0]["parameter"], parameter, "{query}");
    }
    audited.finish().await;
}

#[tokio::test]
async fn the_export_streams_every_matching_entry_as_a_json_line() {
    let audited = Audited::start().await;
    // More entries than one page of the export's reads, plus others to filter out.
    sqlx::query(
        "INSERT INTO audit_log (at, actor, auth, action, outcome, target_id)
         SELECT now() - make_interval(secs => n), 'alice', 'token',
                CASE WHEN n % 10 = 0 THEN 'run.cancel' ELSE 'environment.create' END,
                'success', 'env-' || n
         FROM generate_series(1, 1300) AS n",
    )
    .execute(audited.db.store.pool())
    .await
    .unwrap();

    let export = audited
        .server
        .get("/v1/audit/export?action=environment.create")
        .token(&audited.root)
        .send()
        .await;
    assert_eq!(export.status, StatusCode::OK);
    assert_eq!(export.content_type(), "application/x-ndjson");
    let lines: Vec<Value> = export
        .text()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    assert_eq!(lines.len(), 1170, "every matching entry, once");
    assert!(lines.iter().all(|e| e["action"] == "environment.create"));
    let ids: Vec<i64> = lines.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(
        ids.windows(2).all(|w| w[0] > w[1]),
        "newest first, no repeats"
    );

    let paged = audited
        .server
        .get("/v1/audit/export?limit=10")
        .token(&audited.root)
        .send()
        .await;
    paged.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-request");
    audited.finish().await;
}
