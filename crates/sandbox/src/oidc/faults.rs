//! Faults injected into the provider and what it saw, through its test
//! routes (`/__test/...` in `provider.mjs`): a test makes the provider slow,
//! failing or silent for chosen requests and reads back what was asked.

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use super::OidcProvider;

/// A fault rule for [`OidcProvider::inject`]: matching requests wait `delay`,
/// then are dropped, answered with `status`/`body`, or passed on.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    /// Requests whose path starts with this (`/reg`, `/token`, ...).
    pub path_prefix: String,
    /// Only this method (`POST`, `PUT`, ...); any when `None`.
    pub method: Option<String>,
    /// How many requests it applies to before it retires.
    pub times: u32,
    /// Wait this long first.
    pub delay: Duration,
    /// Answer with this status (and `body`) instead of the provider's answer.
    pub status: Option<u16>,
    /// The JSON body sent with `status`.
    pub body: serde_json::Value,
    /// Close the connection without an answer.
    pub drop: bool,
}

impl Fault {
    /// A rule for the next `times` requests under `path_prefix` that does nothing
    /// yet; set the fields or use the `OidcProvider` helpers.
    pub fn new(path_prefix: impl Into<String>, times: u32) -> Self {
        Fault {
            path_prefix: path_prefix.into(),
            method: None,
            times,
            delay: Duration::ZERO,
            status: None,
            body: serde_json::Value::Null,
            drop: false,
        }
    }

    fn to_json(&self) -> serde_json::Value {
        json!({
            "path_prefix": self.path_prefix,
            "method": self.method,
            "times": self.times,
            "delay_ms": u64::try_from(self.delay.as_millis()).unwrap_or(u64::MAX),
            "status": self.status,
            "body": self.body,
            "drop": self.drop,
        })
    }
}

/// One request the provider saw (test routes excluded). `status` 0: dropped.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RequestRecord {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The status answered.
    pub status: u16,
}

impl OidcProvider {
    /// The ids of the clients registered now, sorted.
    pub async fn registered_clients(&self) -> std::io::Result<Vec<String>> {
        self.test_get("clients").await
    }

    /// Every request seen since this process started (test routes excluded).
    pub async fn requests(&self) -> std::io::Result<Vec<RequestRecord>> {
        self.test_get("requests").await
    }

    /// How many fault rules no request has taken yet: a test waits for 0 to
    /// know that the request a fault was meant for has arrived.
    pub async fn pending_faults(&self) -> std::io::Result<usize> {
        let faults: Vec<serde_json::Value> = self.test_get("faults").await?;
        Ok(faults.len())
    }

    /// Adds a fault rule.
    pub async fn inject(&self, fault: &Fault) -> std::io::Result<()> {
        let url = format!("{}/__test/faults", self.issuer);
        let response = self.http.post(url).json(&fault.to_json()).send().await;
        expect_success(response.map_err(std::io::Error::other)?).await
    }

    /// The next `times` requests under `path_prefix` answer `status` with `body`.
    pub async fn fail_next(
        &self,
        path_prefix: &str,
        status: u16,
        body: serde_json::Value,
        times: u32,
    ) -> std::io::Result<()> {
        let fault = Fault {
            status: Some(status),
            body,
            ..Fault::new(path_prefix, times)
        };
        self.inject(&fault).await
    }

    /// The next `times` requests under `path_prefix` wait `delay`, then get the
    /// provider's real answer (a client whose timeout is shorter sees a timeout).
    pub async fn hang_next(
        &self,
        path_prefix: &str,
        delay: Duration,
        times: u32,
    ) -> std::io::Result<()> {
        let fault = Fault {
            delay,
            ..Fault::new(path_prefix, times)
        };
        self.inject(&fault).await
    }

    /// The next `times` requests under `path_prefix` have their connection closed
    /// without an answer.
    pub async fn drop_next(&self, path_prefix: &str, times: u32) -> std::io::Result<()> {
        let fault = Fault {
            drop: true,
            ..Fault::new(path_prefix, times)
        };
        self.inject(&fault).await
    }

    /// Removes every fault rule.
    pub async fn clear_faults(&self) -> std::io::Result<()> {
        let url = format!("{}/__test/faults", self.issuer);
        let response = self.http.delete(url).send().await;
        expect_success(response.map_err(std::io::Error::other)?).await
    }

    async fn test_get<T: serde::de::DeserializeOwned>(&self, what: &str) -> std::io::Result<T> {
        let url = format!("{}/__test/{what}", self.issuer);
        let response = self.http.get(url).send().await;
        let response = response.map_err(std::io::Error::other)?;
        let response = response.error_for_status().map_err(std::io::Error::other)?;
        response.json().await.map_err(std::io::Error::other)
    }
}

/// An answer of a test route: an error unless 2xx.
async fn expect_success(response: reqwest::Response) -> std::io::Result<()> {
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let body = response.text().await.unwrap_or_default();
    Err(std::io::Error::other(format!(
        "test route answered {status}: {body}"
    )))
}
