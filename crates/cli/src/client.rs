//! The CLI's HTTP client for the hubwright API: bearer auth, problem+json errors
//! turned into messages and exit codes, and Server-Sent Events for following runs.

use std::process::ExitCode;

use futures_util::StreamExt;
use hubwright_state::model::{Event, Run, Step};
use reqwest::header::{ACCEPT, AUTHORIZATION};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use uuid::Uuid;

/// Exit codes of the API commands (documented in the README).
pub mod exit {
    /// The API refused the request (4xx): the message says why.
    pub const REFUSED: u8 = 3;
    /// The server could not be reached or failed (5xx).
    pub const UNAVAILABLE: u8 = 4;
}

/// What went wrong talking to the API.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A problem+json answer.
    #[error("{detail} ({status})")]
    Problem { status: StatusCode, detail: String },
    /// No answer, or not one we understand.
    #[error("{0}")]
    Unavailable(String),
}

impl ClientError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Self::Problem { status, .. } if status.is_client_error() => {
                ExitCode::from(exit::REFUSED)
            }
            _ => ExitCode::from(exit::UNAVAILABLE),
        }
    }
}

/// A client for one server and token.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    token: String,
    http: reqwest::Client,
}

/// A run with its steps, as `GET /v1/runs/{id}` returns it.
#[derive(Debug, serde::Deserialize, Serialize)]
pub struct RunView {
    #[serde(flatten)]
    pub run: Run,
    pub steps: Vec<Step>,
}

/// `text` fit for one path segment or query value: everything but RFC 3986's
/// unreserved characters percent-encoded, so a name can never reach another path.
pub fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

impl Client {
    /// A client for `base` (e.g. `http://127.0.0.1:8080`) with a bearer token.
    pub fn new(base: &str, token: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            http: hubwright_http::client(),
        }
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .header(AUTHORIZATION, format!("Bearer {}", self.token))
    }

    async fn send<T: DeserializeOwned>(&self, request: RequestBuilder) -> Result<T, ClientError> {
        let response = request.send().await.map_err(|err| {
            ClientError::Unavailable(format!("cannot reach {}: {err}", self.base))
        })?;
        let status = response.status();
        let body: Value = response.json().await.map_err(|err| {
            ClientError::Unavailable(format!("unreadable answer ({status}): {err}"))
        })?;
        if !status.is_success() {
            let detail = body["detail"].as_str().unwrap_or("no detail").to_owned();
            return Err(ClientError::Problem { status, detail });
        }
        serde_json::from_value(body)
            .map_err(|err| ClientError::Unavailable(format!("unexpected answer: {err}")))
    }

    /// GET `path`.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.send(self.request(Method::GET, path)).await
    }

    /// Up to `wanted` items of the list at `path` with `query`, page by page
    /// (at most 200 a page, as every list endpoint allows), following
    /// `next_cursor` (an id, whatever its type `C`) until it runs out.
    pub async fn list<T: DeserializeOwned, C: DeserializeOwned + std::fmt::Display>(
        &self,
        path: &str,
        query: &[String],
        wanted: usize,
    ) -> Result<Vec<T>, ClientError> {
        #[derive(serde::Deserialize)]
        struct Page<T, C> {
            items: Vec<T>,
            next_cursor: Option<C>,
        }
        let mut items = Vec::new();
        let mut cursor: Option<C> = None;
        while items.len() < wanted {
            let mut params = query.to_vec();
            params.push(format!("limit={}", (wanted - items.len()).min(200)));
            if let Some(cursor) = &cursor {
                params.push(format!("cursor={cursor}"));
            }
            let page: Page<T, C> = self.get(&format!("{path}?{}", params.join("&"))).await?;
            items.extend(page.items);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        items.truncate(wanted);
        Ok(items)
    }

    /// POST `body` to `path`, with an idempotency key when given.
    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        idempotency_key: Option<&str>,
    ) -> Result<T, ClientError> {
        let mut request = self.request(Method::POST, path).json(body);
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        self.send(request).await
    }

    /// DELETE `path`.
    pub async fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.send(self.request(Method::DELETE, path)).await
    }

    /// GET `path` and hand each chunk of the answer's body to `write` as it
    /// arrives (the audit export), instead of holding it all.
    pub async fn download(
        &self,
        path: &str,
        mut write: impl FnMut(&[u8]),
    ) -> Result<(), ClientError> {
        let response = self
            .request(Method::GET, path)
            .send()
            .await
            .map_err(|err| {
                ClientError::Unavailable(format!("cannot reach {}: {err}", self.base))
            })?;
        let status = response.status();
        if !status.is_success() {
            let body: Value = response.json().await.unwrap_or(Value::Null);
            let detail = body["detail"].as_str().unwrap_or("no detail").to_owned();
            return Err(ClientError::Problem { status, detail });
        }
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk
                .map_err(|err| ClientError::Unavailable(format!("the answer broke off: {err}")))?;
            write(&chunk);
        }
        Ok(())
    }

    /// Follows a run's events live (Server-Sent Events) and prints each with
    /// `print`, until the run has ended; returns the run as it ended.
    pub async fn follow(
        &self,
        run_id: Uuid,
        mut print: impl FnMut(&Event, &[Step]),
    ) -> Result<Run, ClientError> {
        let view: RunView = self.get(&format!("/v1/runs/{run_id}")).await?;
        let response = self
            .request(Method::GET, &format!("/v1/runs/{run_id}/events"))
            .header(ACCEPT, "text/event-stream")
            .send()
            .await
            .map_err(|err| {
                ClientError::Unavailable(format!("cannot reach {}: {err}", self.base))
            })?;
        if !response.status().is_success() {
            return Err(ClientError::Unavailable(format!(
                "event stream refused ({})",
                response.status()
            )));
        }
        let mut stream = response.bytes_stream();
        let mut buffer = String::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk
                .map_err(|err| ClientError::Unavailable(format!("event stream broke: {err}")))?;
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            // Events are separated by a blank line; keep a partial one for later.
            while let Some(end) = buffer.find("\n\n") {
                let block: String = buffer.drain(..end + 2).collect();
                let data: String = block
                    .lines()
                    .filter_map(|line| line.strip_prefix("data:"))
                    .map(str::trim_start)
                    .collect();
                if let Ok(event) = serde_json::from_str::<Event>(&data) {
                    print(&event, &view.steps);
                }
            }
        }
        let ended: RunView = self.get(&format!("/v1/runs/{run_id}")).await?;
        Ok(ended.run)
    }
}

#[cfg(test)]
mod tests {
    use super::segment;

    #[test]
    fn a_segment_cannot_leave_its_place_in_the_path() {
        assert_eq!(segment("alice-lab"), "alice-lab");
        assert_eq!(segment("../tokens?x=1"), "..%2Ftokens%3Fx%3D1");
        assert_eq!(segment("é"), "%C3%A9");
    }
}
