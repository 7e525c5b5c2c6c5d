//! `Idempotency-Key`: a client's name for one creation, so a retried or
//! resubmitted request creates nothing twice (environments, tokens).

use axum::http::HeaderMap;

use crate::error::{ApiResult, Problem};

/// `Idempotency-Key`: printable ASCII, at most 200 characters.
pub fn key(headers: &HeaderMap) -> ApiResult<Option<&str>> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(key)
            if !key.is_empty() && key.len() <= 200 && key.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            Ok(Some(key))
        }
        _ => Err(Problem::invalid_header(
            "Idempotency-Key",
            "must be 1 to 200 printable ASCII characters without spaces",
        )),
    }
}
