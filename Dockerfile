# syntax=docker/dockerfile:1
# The hubwright image: the `hubwright` binary, the `helm` binary its worker
# runs, and the workflow templates in /etc/hubwright/workflows.
#
#   docker build --build-arg HELM_SHA256=<sha256> \
#     --build-arg HUBWRIGHT_COMMIT=$(git rev-parse --short=12 HEAD) -t hubwright:dev .
#   docker run --rm -e DATABASE_URL=postgres://… hubwright:dev migrate
#   docker run --rm -p 8080:8080 --read-only --tmpfs /tmp \
#     -e DATABASE_URL=postgres://… -e HUBWRIGHT_SECRET_KEY=$(openssl rand -hex 32) \
#     hubwright:dev serve --listen 0.0.0.0:8080
#
# Queries are checked against the committed .sqlx/ data (SQLX_OFFLINE=true in
# .cargo/config.toml), so the build needs no database. The image leaves the
# local sandbox out (--no-default-features): it has no use for a stand-in
# Kubernetes API (docs/decisions/0007-sandbox-crate.md). It keeps the trace
# exporter (--features otel; docs/decisions/0023-tracing.md).

ARG RUST_VERSION=1.95
# The helm the tests run (crates/sandbox/src/helm.rs). Pass its published
# checksum (https://get.helm.sh/helm-${HELM_VERSION}-linux-amd64.tar.gz.sha256sum,
# checked against the release notes' signature): --build-arg HELM_SHA256=…
# The build refuses to run without one.
ARG HELM_VERSION=v3.17.2
ARG HELM_SHA256=

FROM rust:${RUST_VERSION}-slim-bookworm AS build
# The commit `hubwright_build_info` reports: the build context has no .git.
ARG HUBWRIGHT_COMMIT=unknown
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    HUBWRIGHT_COMMIT="${HUBWRIGHT_COMMIT}" \
    cargo build --release --locked -p hubwright-cli --no-default-features --features otel \
 && cp target/release/hubwright /usr/local/bin/hubwright

FROM debian:12-slim AS helm
ARG HELM_VERSION
ARG HELM_SHA256
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*
RUN test -n "${HELM_SHA256}" || { echo "set --build-arg HELM_SHA256=<sha256 of helm-${HELM_VERSION}-linux-amd64.tar.gz>" >&2; exit 1; }
RUN curl -fsSLo /tmp/helm.tgz "https://get.helm.sh/helm-${HELM_VERSION}-linux-amd64.tar.gz" \
 && echo "${HELM_SHA256}  /tmp/helm.tgz" | sha256sum -c - \
 && tar -xzf /tmp/helm.tgz -C /tmp linux-amd64/helm \
 && install -m 0755 /tmp/linux-amd64/helm /usr/local/bin/helm

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /usr/local/bin/hubwright /usr/local/bin/hubwright
COPY --from=helm /usr/local/bin/helm /usr/local/bin/helm
COPY workflows/ /etc/hubwright/workflows/
# Everything written at run time goes under /tmp (an emptyDir or tmpfs), so
# the root filesystem can be read-only.
ENV HOME=/tmp \
    HELM_BIN=/usr/local/bin/helm \
    HELM_CACHE_HOME=/tmp/helm/cache \
    HELM_CONFIG_HOME=/tmp/helm/config \
    HELM_DATA_HOME=/tmp/helm/data \
    KUBECACHEDIR=/tmp/kube-cache \
    HUBWRIGHT_WORKFLOWS=/etc/hubwright/workflows
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["hubwright"]
CMD ["serve", "--listen", "0.0.0.0:8080"]
