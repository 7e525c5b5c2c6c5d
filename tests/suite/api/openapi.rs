//! The committed copy of the OpenAPI document in docs/openapi.json matches the
//! one generated from the code (`just openapi` regenerates it). That a real
//! server serves it, open, is checked over HTTP in `api::probes`.

#[test]
fn the_committed_document_matches_the_code() {
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json"))
            .expect("docs/openapi.json exists (run `just openapi`)");
    assert!(
        committed.trim_end() == hubwright_api::openapi::document().trim_end(),
        "docs/openapi.json is stale: run `just openapi` and commit it"
    );
}
