//! The catalogue and the request form: generated from the schema, refused
//! requests shown at their fields with the input kept, a reload that does
//! not ask twice, and a policy limit said plainly.

use super::*;

#[tokio::test]
async fn the_catalogue_lists_the_shipped_templates_each_linked_to_its_form() {
    let console = Console::shipped().await;
    let dana = console.developer("dana").await;
    let page = dana.get("/environments/new").await;
    assert_eq!(page.status, StatusCode::OK);
    page.assert_says("<h1>New environment</h1>");
    page.assert_says("<h2 id=\"template-1\">demo</h2>");
    page.assert_says("Shows a run moving step by step, with durable waits.");
    page.assert_says("href=\"/environments/new/demo\">Choose demo</a>");
    page.assert_says("href=\"/environments/new/jupyterhub\">Choose jupyterhub</a>");
    page.assert_says("Lives 8h unless you choose otherwise, at most 72h");

    let form = dana.get("/environments/new/demo").await;
    assert_eq!(form.status, StatusCode::OK);
    form.assert_says("<h1>New demo environment</h1>");
    let greeting = control(&form, "param-greeting");
    assert!(greeting.contains("value=\"hello\""), "{greeting}");
    assert!(greeting.contains("maxlength=\"64\""), "{greeting}");
    assert_eq!(
        dana.get("/environments/new/nothing").await.status,
        StatusCode::NOT_FOUND
    );
    console.finish().await;
}

#[tokio::test]
async fn the_form_has_a_control_for_each_parameter_of_the_templates_schema() {
    let dir = scratch_dir("console-clusters");
    let clusters = dir.join("clusters.yaml");
    std::fs::write(&clusters, "clusters:\n  east: {}\n  west: {}\n").unwrap();
    let console = Console::start(&["--clusters", clusters.to_str().unwrap()]).await;
    let erin = console.developer("erin").await;
    let form = erin.get("/environments/new/lab").await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.html);

    let cpu = control(&form, "param-cpu");
    for attribute in [
        "type=\"number\"",
        "step=\"any\"",
        "min=\"0.5\"",
        "max=\"4\"",
        "value=\"1\"",
        "name=\"param.cpu\"",
    ] {
        assert!(cpu.contains(attribute), "{attribute} in {cpu}");
    }
    assert!(control(&form, "param-seats").contains("step=\"1\""));
    form.assert_says(
        "<p id=\"param-cpu-help\" class=\"help\">CPUs for each server. From 0.5 to 4.</p>",
    );
    let gpu = control(&form, "param-gpu");
    assert!(
        gpu.contains("type=\"checkbox\"") && !gpu.contains("checked"),
        "{gpu}"
    );
    form.assert_says("<option value=\"small\" selected>small</option>");
    form.assert_says("<option value=\"large\">large</option>");
    assert!(control(&form, "param-admins").starts_with("<textarea"));
    let image = control(&form, "param-image");
    assert!(image.contains("maxlength=\"64\""), "{image}");
    assert!(image.contains("pattern=\"^[a-z]+$\""), "{image}");
    assert!(
        !form.html.contains("name=\"param.quota\""),
        "the platform's parameter is not asked"
    );
    form.assert_says("<dt>quota</dt><dd>30</dd>");
    let name = control(&form, "name");
    assert!(
        name.contains("required") && name.contains("maxlength=\"40\""),
        "{name}"
    );
    assert!(control(&form, "ttl").contains("value=\"1h\""));
    form.assert_says("1h by default, at most 4h");
    form.assert_says(
        "<option value=\"east\" selected>east</option><option value=\"west\">west</option>",
    );
    assert!(control(&form, "cluster").starts_with("<select"));
    form.assert_says("<button type=\"submit\" class=\"primary\">Request environment</button>");
    console.finish().await;
}

#[tokio::test]
async fn a_refused_request_shows_the_apis_message_at_its_field_keeps_the_input_and_creates_nothing()
{
    let console = Console::start(&[]).await;
    let erin = console.developer("erin").await;

    let bad_name = erin
        .post(
            "/environments/new/lab",
            &[
                ("name", "Not A Label"),
                ("param.seats", "12"),
                ("param.admins", "ann\nbo"),
            ],
        )
        .await;
    assert_eq!(
        bad_name.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        bad_name.html
    );
    bad_name.assert_says("role=\"alert\"");
    let name = control(&bad_name, "name");
    assert!(name.contains("aria-invalid=\"true\""), "{name}");
    assert!(
        name.contains("aria-describedby=\"name-help name-error\""),
        "{name}"
    );
    assert!(
        name.contains("value=\"Not A Label\""),
        "the input is kept: {name}"
    );
    assert!(
        text_of(&bad_name, "name-error").starts_with("must be a DNS-1123 label"),
        "{}",
        text_of(&bad_name, "name-error")
    );
    assert!(control(&bad_name, "param-seats").contains("value=\"12\""));
    bad_name.assert_says(">ann\nbo</textarea>");

    let long = erin
        .post("/environments/new/lab", &[("name", "lab"), ("ttl", "5h")])
        .await;
    assert_eq!(long.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(control(&long, "ttl").contains("aria-invalid=\"true\""));
    assert!(control(&long, "ttl").contains("value=\"5h\""));
    assert!(
        text_of(&long, "ttl-error").contains("beyond the maximum of template `lab` (4h)"),
        "{}",
        text_of(&long, "ttl-error")
    );
    assert!(
        !control(&long, "name").contains("aria-invalid"),
        "only the field at fault is marked"
    );

    let big = erin
        .post(
            "/environments/new/lab",
            &[("name", "lab"), ("param.cpu", "9")],
        )
        .await;
    assert_eq!(big.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(control(&big, "param-cpu").contains("aria-invalid=\"true\""));
    assert!(control(&big, "param-cpu").contains("value=\"9\""));
    assert!(!text_of(&big, "param-cpu-error").is_empty());

    let word = erin
        .post(
            "/environments/new/lab",
            &[("name", "lab"), ("param.seats", "many")],
        )
        .await;
    assert_eq!(word.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        !text_of(&word, "param-seats-error").is_empty(),
        "the API names the rule a word breaks"
    );
    assert_eq!(console.environments().await, 0, "nothing was created");
    console.finish().await;
}

#[tokio::test]
async fn sending_the_same_form_twice_asks_once_and_a_taken_name_is_shown_at_the_name() {
    let console = Console::start(&[]).await;
    let erin = console.developer("erin").await;
    let form = [("name", "twice"), ("request_key", "form-1")];
    let first = erin.post("/environments/new/quick", &form).await;
    assert_eq!(first.status, StatusCode::SEE_OTHER, "{}", first.html);
    let again = erin.post("/environments/new/quick", &form).await;
    assert_eq!(again.status, StatusCode::SEE_OTHER, "{}", again.html);
    assert_eq!(first.location, again.location, "the same environment");
    assert_eq!(console.environments().await, 1);
    // The creation's record, committed with it, says it came from the console.
    let recorded: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT actor, outcome, channel FROM audit_log WHERE action = 'environment.create'",
    )
    .fetch_all(console.db.store.pool())
    .await
    .unwrap();
    assert_eq!(
        recorded,
        [(
            "erin".to_owned(),
            "success".to_owned(),
            Some("console".to_owned())
        )]
    );

    let taken = erin
        .post(
            "/environments/new/quick",
            &[("name", "twice"), ("request_key", "form-2")],
        )
        .await;
    assert_eq!(taken.status, StatusCode::CONFLICT, "{}", taken.html);
    assert!(control(&taken, "name").contains("aria-invalid=\"true\""));
    assert!(
        text_of(&taken, "name-error").contains("already has an environment named `twice`"),
        "{}",
        text_of(&taken, "name-error")
    );
    assert_eq!(console.environments().await, 1);
    console.finish().await;
}

#[tokio::test]
async fn a_request_past_a_limit_of_the_policy_says_which_limit_plainly() {
    let dir = scratch_dir("console-policy");
    let policy = dir.join("policy.yaml");
    std::fs::write(&policy, "defaults: { environments: 1 }\n").unwrap();
    let console = Console::start(&["--policy", policy.to_str().unwrap()]).await;
    let erin = console.developer("erin").await;
    console.request(&erin, "quick", "one").await;
    let refused = erin
        .post("/environments/new/quick", &[("name", "two")])
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.html);
    refused.assert_says("This request would go past a limit set for you.");
    refused.assert_says(
        "The limit <code>environments</code> is 1 (set by <code>defaults.environments</code>); you use 1 now, and this request asks for 1 more.",
    );
    assert!(control(&refused, "name").contains("value=\"two\""));
    assert_eq!(console.environments().await, 1);
    console.finish().await;
}
