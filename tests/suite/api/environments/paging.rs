//! `/v1/environments`: pages that stay stable while environments are added.

use super::*;

#[tokio::test]
async fn pages_stay_stable_while_environments_are_added() {
    let api = Api::new().await;
    let alice = api.token("alice", Role::Developer).await;
    for i in 0..5 {
        api.create(
            &alice,
            json!({"name": format!("env-{i}"), "template": "lab"}),
        )
        .await;
    }
    let first = api
        .call("GET", "/v1/environments?limit=2", &alice, None)
        .await;
    assert_eq!(names(&first), ["env-0", "env-1"]);
    api.create(&alice, json!({"name": "env-5", "template": "lab"}))
        .await;
    let cursor = first.body["next_cursor"].as_str().unwrap();
    let second = api
        .call(
            "GET",
            &format!("/v1/environments?limit=2&cursor={cursor}"),
            &alice,
            None,
        )
        .await;
    assert_eq!(names(&second), ["env-2", "env-3"]);
    let cursor = second.body["next_cursor"].as_str().unwrap();
    let third = api
        .call(
            "GET",
            &format!("/v1/environments?limit=2&cursor={cursor}"),
            &alice,
            None,
        )
        .await;
    assert_eq!(names(&third), ["env-4", "env-5"]);
    assert_eq!(
        third.body["next_cursor"],
        Value::Null,
        "the last page says so"
    );

    let bad = api
        .call("GET", "/v1/environments?limit=0", &alice, None)
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let unknown = api
        .call("GET", "/v1/environments?colour=red", &alice, None)
        .await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
    api.finish().await;
}

#[tokio::test]
async fn an_operator_pages_through_everyone_while_more_are_asked_for_between_pages() {
    let api = Api::new().await;
    let ops = api.token("ops", Role::Operator).await;
    let alice = api.token("alice", Role::Developer).await;
    let bob = api.token("bob", Role::Developer).await;
    let mut expected = Vec::new();
    for i in 0..9 {
        let (owner, token) = if i % 2 == 0 {
            ("alice", &alice)
        } else {
            ("bob", &bob)
        };
        let name = format!("{owner}-{i}");
        api.create(token, json!({"name": name, "template": "lab"}))
            .await;
        expected.push(name);
    }

    // Two more arrive, one per owner, between every two pages.
    let mut seen: Vec<String> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut added = 0;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/v1/environments?limit=4&cursor={cursor}"),
            None => "/v1/environments?limit=4".to_owned(),
        };
        let page = api.call("GET", &path, &ops, None).await;
        assert_eq!(page.status, StatusCode::OK, "{:#}", page.body);
        seen.extend(names(&page));
        for token in [&alice, &bob] {
            let name = format!("late-{added}");
            added += 1;
            let created = api
                .create(token, json!({"name": name, "template": "lab"}))
                .await;
            assert_eq!(created.status, StatusCode::ACCEPTED);
        }
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        assert!(added < 100, "paging ends");
    }

    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "no environment twice: {seen:?}");
    assert_eq!(
        seen[..expected.len()],
        expected[..],
        "the ones there before come first, in order"
    );
    // Everything listed after them was created later: rows added behind the
    // cursor never push earlier ones onto the next page.
    let ids: Vec<String> = {
        let all = api
            .call("GET", "/v1/environments?limit=200", &ops, None)
            .await;
        names(&all)
    };
    let positions: Vec<usize> = seen
        .iter()
        .map(|name| ids.iter().position(|n| n == name).unwrap())
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "pages follow one order: {seen:?}"
    );
    assert_eq!(
        seen.len(),
        ids.len() - 2,
        "every row but the two created after the last page was read"
    );
    api.finish().await;
}
