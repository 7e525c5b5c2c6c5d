//! `/openapi/v2`: a Swagger 2.0 document without definitions.
//!
//! Clients use it only for kinds the `/openapi/v3` index has no document
//! for: client-go's field-validation check falls back to it, and kubectl's
//! and helm's client-side validation look the kind up in it. A kind it does
//! not describe is left unvalidated, so the client goes on to map the kind
//! to a resource and fails, as against a real server, with
//! `no matches for kind "X" in version "Y"`. Without this document the
//! clients failed earlier, on the missing `/openapi/v2`.

use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::Response;
use serde_json::json;

/// The media type client-go asks for (gnostic's `openapi_v2.Document`);
/// kube-openapi accepts it but answers with [`PROTOBUF_ANSWERED`], as `@` is
/// no character a media type may have (Go's `mime` refuses it).
pub const PROTOBUF: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";

/// The media type of the protobuf answer.
pub const PROTOBUF_ANSWERED: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

const TITLE: &str = "Kubernetes";
const VERSION: &str = "v1.33.0";

/// A length-delimited protobuf field (lengths here are below 128).
fn field(number: u8, bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![(number << 3) | 2, bytes.len() as u8];
    out.extend_from_slice(bytes);
    out
}

/// `Document { swagger: "2.0" }`: nothing else is read from it.
fn protobuf_document() -> Vec<u8> {
    field(1, b"2.0")
}

/// The document as protobuf when `accept` asks for it, else as JSON.
pub fn respond(accept: &str) -> Response {
    let (content_type, body) = if accept.contains(PROTOBUF) || accept.contains(PROTOBUF_ANSWERED) {
        (PROTOBUF_ANSWERED.to_owned(), protobuf_document())
    } else {
        let doc = json!({
            "swagger": "2.0",
            "info": { "title": TITLE, "version": VERSION },
            "paths": {},
            "definitions": {},
        });
        ("application/json".to_owned(), doc.to_string().into_bytes())
    };
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_protobuf_document_is_a_swagger_2_document() {
        assert_eq!(protobuf_document(), b"\x0a\x032.0");
    }
}
