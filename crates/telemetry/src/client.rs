//! Spans around the calls hubwright makes to other services (the Kubernetes
//! API, the identity provider, webhook endpoints, a hub's health endpoint),
//! each sending its trace context on in a `traceparent` header.
//!
//! A span names the service and the operation, never the URL's path or
//! query: a webhook's may hold a token. The server's address and port are
//! enough to find its logs.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tracing::Instrument;
use tracing::field::Empty;

use crate::context::inject;

/// A client span for one call to `peer` (`kubernetes`, `identity-provider`,
/// `webhook`, `hub`), named `"{peer} {operation}"`.
pub fn span(
    peer: &'static str,
    operation: &str,
    method: &http::Method,
    uri: &http::Uri,
) -> tracing::Span {
    tracing::info_span!(
        "http client",
        otel.name = %format!("{peer} {operation}"),
        otel.kind = "client",
        otel.status_code = Empty,
        peer.service = peer,
        http.request.method = %method,
        server.address = uri.host().unwrap_or_default(),
        server.port = uri.port_u16(),
        http.response.status_code = Empty,
    )
}

/// Records the answer's status on `span`; 5xx marks it failed.
pub fn record_status(span: &tracing::Span, status: http::StatusCode) {
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
}

/// Records on `span` that the call got no answer.
pub fn record_failure(span: &tracing::Span) {
    span.record("otel.status_code", "ERROR");
}

/// Sends `request` in a client span for `peer` and `operation` (see
/// [`span`]), with its trace context in a `traceparent` header.
pub async fn send(
    request: reqwest::RequestBuilder,
    peer: &'static str,
    operation: &str,
) -> reqwest::Result<reqwest::Response> {
    let (client, request) = request.build_split();
    let mut request = request?;
    let uri: http::Uri = request.url().as_str().parse().unwrap_or_default();
    let span = span(peer, operation, request.method(), &uri);
    inject(&span, request.headers_mut());
    let answer = client.execute(request).instrument(span.clone()).await;
    match &answer {
        Ok(response) => record_status(&span, response.status()),
        Err(_) => record_failure(&span),
    }
    answer
}

/// A tower layer that puts each request of a client built on a tower stack
/// (kube's) in a client span for `peer`, sending its trace context on.
#[derive(Debug, Clone, Copy)]
pub struct ClientSpanLayer {
    peer: &'static str,
}

impl ClientSpanLayer {
    /// Spans for calls to `peer`.
    pub fn new(peer: &'static str) -> Self {
        Self { peer }
    }
}

impl<S> tower_layer::Layer<S> for ClientSpanLayer {
    type Service = ClientSpanService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ClientSpanService {
            inner,
            peer: self.peer,
        }
    }
}

/// The service [`ClientSpanLayer`] makes.
#[derive(Debug, Clone)]
pub struct ClientSpanService<S> {
    inner: S,
    peer: &'static str,
}

impl<S, B, R> tower_service::Service<http::Request<B>> for ClientSpanService<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    S::Error: 'static,
    R: 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        // kube names each call's verb (`get`, `create`, `list`…) in the
        // request's extensions.
        let operation = request
            .extensions()
            .get::<&'static str>()
            .copied()
            .unwrap_or("request");
        let span = span(self.peer, operation, request.method(), request.uri());
        inject(&span, request.headers_mut());
        let call = {
            let _entered = span.enter();
            self.inner.call(request)
        };
        Box::pin(async move {
            let answer = call.instrument(span.clone()).await;
            match &answer {
                Ok(response) => record_status(&span, response.status()),
                Err(_) => record_failure(&span),
            }
            answer
        })
    }
}
