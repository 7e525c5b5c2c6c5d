# hubwright's front door. `just` lists the recipes.

set shell := ["bash", "-euo", "pipefail", "-c"]

# The server every recipe uses; trust auth as root, as Debian's test setup has it.
pg_host := env("PGHOST", "127.0.0.1")
pg_admin := "postgres://root@" + pg_host + ":5432/postgres"
demo_url := "postgres://root@" + pg_host + ":5432/hubwright_demo"
bench_url := "postgres://root@" + pg_host + ":5432/hubwright_bench"
sqlx_url := "postgres://root@" + pg_host + ":5432/hubwright_sqlx"

# List the recipes.
default:
    @just --list --unsorted

# Provision a real JupyterHub and log in; Ctrl-C tears it down. On the cluster
# in KUBECONFIG when it is set and helm is installed (demo-cluster), otherwise
# in a local sandbox (demo-hub).
demo:
    #!/usr/bin/env bash
    set -euo pipefail
    if [ -n "${KUBECONFIG:-}" ] && { [ -n "${HELM_BIN:-}" ] || command -v helm >/dev/null; }; then
        exec {{just_executable()}} demo-cluster
    fi
    if [ -n "${KUBECONFIG:-}" ]; then
        echo "KUBECONFIG is set but helm is not installed: using the local sandbox (install helm 3 or 4 for the cluster demo)"
    fi
    exec {{just_executable()}} demo-hub

# Provision a real JupyterHub ON THE CLUSTER in KUBECONFIG (current context)
# with the zero-to-jupyterhub chart, reached through a port-forward on
# 127.0.0.1:8000; the owner logs in with a printed password. Ctrl-C tears it down.
demo-cluster: (_demo "--cluster")

# The engine alone: migrate a local database and run workflows/demo.yaml, printing each step.
demo-engine: (_demo)

# The Kubernetes API stand-in (no pods run), the real oidc-provider, helm and
# JupyterHub on this machine; the first run downloads helm and JupyterHub once.
# Provision a real JupyterHub in a LOCAL SANDBOX and keep it until Ctrl-C.
demo-hub: (_demo "--sandbox")

# Builds hubwright where you can see it (the first build takes minutes), then
# runs `hubwright demo ARGS` on a fresh database. On a terminal the demo runs
# as a job of its own (`set -m`): Ctrl-C reaches the demo alone, which tears
# down what it made and exits 0. `just` never sees the signal; when it does,
# it reports "interrupted" and exits 130 however cleanly the demo ended.
_demo *args: db-up
    #!/usr/bin/env bash
    set -euo pipefail
    {{just_executable()}} _recreate-db hubwright_demo
    echo "building hubwright (cargo build -p hubwright-cli; the first build takes several minutes)" >&2
    cargo build -p hubwright-cli
    if [ -t 0 ]; then set -m; fi
    DATABASE_URL={{demo_url}} RUST_LOG=${RUST_LOG:-warn} ./target/debug/hubwright demo {{args}}

# Formatting, lints and every test (real Postgres, real hubwright processes).
# Clippy runs inside the test build (clippy-driver as the workspace's compiler,
# warnings as errors): the dependencies compile once, not once for `cargo
# clippy` and again for the tests (docs/development.md).
test: db-up _test-tablespace browser-up promtool-up
    cargo fmt --all -- --check
    @just _sweep-test-dbs
    command -v cargo-nextest >/dev/null || cargo install cargo-nextest --locked
    RUSTC_WORKSPACE_WRAPPER="$(rustup which clippy-driver 2>/dev/null || command -v clippy-driver)" \
    CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__" \
    HUBWRIGHT_TEST_DATABASE_URL={{pg_admin}} cargo nextest run --workspace --no-fail-fast

# Screenshots of the web console's main pages into docs/console/ (a real
# browser over real data: the console, a worker, oidc-provider, Chromium).
screenshots: db-up browser-up
    HUBWRIGHT_SCREENSHOTS_DIR={{justfile_directory()}}/docs/console \
    HUBWRIGHT_TEST_DATABASE_URL={{pg_admin}} cargo nextest run -p hubwright-tests \
        --run-ignored only -E 'test(/^console::screenshots::/)'

# The chaos suite's long rounds (tests/suite/chaos; the short round runs in
# `just test`): real workers SIGKILLed and replaced, paused past their lease,
# cut off from PostgreSQL through a proxy, PostgreSQL restarted (a server of
# the test's own, never the shared one), schedulers SIGKILLed while racing
# over a mass expiry. Prints one JSON line of figures, kept in
# target/chaos.jsonl; docs/reliability.md records them. An empty seed picks one.
chaos rounds="3" runs="500" kills="36" cuts="3" restarts="1" ttl="300" scheduler_kills="14" seed="": db-up
    command -v cargo-nextest >/dev/null || cargo install cargo-nextest --locked
    rm -f target/chaos.jsonl
    HUBWRIGHT_CHAOS_ROUNDS={{rounds}} HUBWRIGHT_CHAOS_RUNS={{runs}} HUBWRIGHT_CHAOS_KILLS={{kills}} \
    HUBWRIGHT_CHAOS_CUTS={{cuts}} HUBWRIGHT_CHAOS_RESTARTS={{restarts}} HUBWRIGHT_CHAOS_TTL_ENVIRONMENTS={{ttl}} \
    HUBWRIGHT_CHAOS_SCHEDULER_KILLS={{scheduler_kills}} HUBWRIGHT_CHAOS_SEED={{seed}} \
    HUBWRIGHT_CHAOS_FIGURES=$PWD/target/chaos.jsonl HUBWRIGHT_TEST_DATABASE_URL={{pg_admin}} \
        cargo nextest run -p hubwright-tests --no-capture --run-ignored only -E 'test(/^chaos::/)'
    @cat target/chaos.jsonl

# The Kubernetes tests against a real cluster instead of the stand-in (README: "On a real cluster").
e2e: db-up
    @test -n "${KUBECONFIG:-}" || { echo "error: set KUBECONFIG to the cluster's kubeconfig (README: On a real cluster)"; exit 2; }
    HUBWRIGHT_TEST_DATABASE_URL={{pg_admin}} cargo nextest run -p hubwright-tests --no-fail-fast \
        -E 'test(/^(namespace|sandbox::(apiserver|portforward|helm|helm_kinds)|worker::steps::(namespace|retry_after)|helm_release|health|idp|demo)::/)'

# cargo fmt --check and clippy with warnings as errors, on every target and on
# the container image's build (the binary without the sandbox); then the
# supply-chain checks (`just deny`).
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets --all-features --quiet -- -D warnings
    cargo clippy -p hubwright-cli --no-default-features --quiet -- -D warnings
    @just deny

# cargo-deny (deny.toml): banned crates, licences and sources always; RustSec
# advisories against the database fetched now, or else a local copy in
# $CARGO_HOME/advisory-dbs (its date is printed); with neither, that one check
# is skipped, loudly (docs/development.md: Supply chain).
deny:
    #!/usr/bin/env bash
    set -euo pipefail
    command -v cargo-deny >/dev/null || cargo install cargo-deny --locked
    cargo deny --log-level error check bans licenses sources
    db="${CARGO_HOME:-$HOME/.cargo}/advisory-dbs/advisory-db-3157b0e258782691"
    if cargo deny --log-level error fetch db 2>/dev/null; then
        echo "advisories: RustSec database fetched"
    elif [ -d "$db/crates" ]; then
        echo "advisories: the RustSec database cannot be fetched; using the local copy of $(git -C "$db" log -1 --format=%cs 2>/dev/null || echo 'unknown date') in $db"
    else
        echo "advisories: SKIPPED: the RustSec database cannot be fetched from here and there is no local copy in $db (docs/development.md: Supply chain)" >&2
        exit 0
    fi
    cargo deny --offline --log-level error check advisories

# Run the benchmark workloads (three times each) and write docs/benchmarks.md.
bench repeats="3": db-up
    cargo build --release --quiet -p hubwright-cli
    rm -f target/bench.jsonl
    for round in $(seq 1 {{repeats}}); do \
        for workload in w1 w1b w2 w3 ttl streams console api; do \
            just _recreate-db hubwright_bench; \
            echo "round $round: $workload…" >&2; \
            DATABASE_URL={{bench_url}} ./target/release/hubwright bench $workload | tee -a target/bench.jsonl; \
        done; \
    done
    ./target/release/hubwright bench report --input target/bench.jsonl --notes docs/benchmarks-notes.md > docs/benchmarks.md
    @echo "wrote docs/benchmarks.md"

# Fuzz the REST API from its OpenAPI document (schemathesis): no 5xx, every status,
# content type and body as documented. Not checked: that every schema-valid
# request is accepted (template names, TTL maxima and name uniqueness are rules
# the schema cannot state), nor that a deleted environment is gone at once:
# DELETE answers 202 and starts a teardown; the environment stays readable,
# `tearing_down` and then `deleted`, as its history.
fuzz examples="25": db-up
    #!/usr/bin/env bash
    set -euo pipefail
    command -v schemathesis >/dev/null || pip install --quiet schemathesis
    just _recreate-db hubwright_fuzz
    cargo build --quiet -p hubwright-cli
    export DATABASE_URL=postgres://root@{{pg_host}}:5432/hubwright_fuzz
    export HUBWRIGHT_SECRET_KEY=$(openssl rand -hex 32)
    ./target/debug/hubwright admin migrate
    token=$(./target/debug/hubwright admin token create --role admin --subject fuzz 2>/dev/null)
    ./target/debug/hubwright serve --listen 127.0.0.1:18181 --workflows workflows --rate-limit 0 --auth-failure-rate-limit 0 > target/fuzz-serve.log 2>&1 &
    server=$!
    trap 'kill $server 2>/dev/null' EXIT
    for _ in $(seq 1 100); do curl -sf 127.0.0.1:18181/readyz >/dev/null && break; sleep 0.1; done
    schemathesis run http://127.0.0.1:18181/v1/openapi.json \
        --header "Authorization: Bearer $token" \
        --checks all --exclude-checks positive_data_acceptance,use_after_free \
        --max-examples {{examples}} --generation-deterministic

# Regenerate docs/openapi.json from the code (a test fails when it drifts).
openapi:
    cargo run --quiet -p hubwright-cli -- openapi > docs/openapi.json
    @echo "wrote docs/openapi.json"

# Drop and recreate the local development database.
db-reset: db-up
    just _recreate-db hubwright
    DATABASE_URL=postgres://root@{{pg_host}}:5432/hubwright cargo run --quiet -p hubwright-cli -- migrate

# Regenerate the sqlx offline query data in .sqlx/ against a freshly migrated schema.
sqlx-prepare: db-up
    just _recreate-db hubwright_sqlx
    for file in migrations/*.sql; do psql -q -v ON_ERROR_STOP=1 {{sqlx_url}} -f "$file"; done
    # Generated aside and swapped in, so builds running meanwhile never see a half-written cache.
    rm -rf target/sqlx-new && mkdir -p target/sqlx-new
    touch crates/state/src/lib.rs
    SQLX_OFFLINE=false SQLX_OFFLINE_DIR=$PWD/target/sqlx-new DATABASE_URL={{sqlx_url}} cargo check --quiet -p hubwright-state
    rm -rf .sqlx && mv target/sqlx-new .sqlx
    @echo "regenerated $(ls .sqlx | wc -l) query files in .sqlx/"

# Start PostgreSQL, installing it first where it is missing.
db-up:
    #!/usr/bin/env bash
    set -euo pipefail
    ready() { command -v pg_isready >/dev/null && pg_isready -q -h {{pg_host}} -p 5432; }
    ready && exit 0
    if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
        echo "PostgreSQL is not installed; installing it with apt-get…" >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    fi
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    if [ -z "$version" ]; then
        echo "no PostgreSQL cluster found under /etc/postgresql" >&2; exit 1
    fi
    hba=/etc/postgresql/$version/main/pg_hba.conf
    # Local development trusts loopback connections, as the CI machines do.
    if ! grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
        sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
    fi
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    for _ in $(seq 1 50); do ready && break; sleep 0.2; done
    ready || { echo "PostgreSQL did not start" >&2; exit 1; }
    su postgres -c "psql -qtAc \"SELECT 1 FROM pg_roles WHERE rolname='root'\"" | grep -q 1 \
        || su postgres -c "createuser --superuser root"
    echo "PostgreSQL is up on {{pg_host}}:5432" >&2

# With apt-get, as root or with password-less sudo; otherwise it prints a
# hint, and the browser tests fail saying the same. HUBWRIGHT_SKIP_BROWSER=1
# skips both (docs/development.md: Browser tests).
# Install Debian's chromium for the browser tests (tests/browser) when it is missing.
browser-up:
    #!/usr/bin/env bash
    set -euo pipefail
    chromium="${HUBWRIGHT_CHROMIUM:-/usr/bin/chromium}"
    [ -x "$chromium" ] && exit 0
    if [ "${HUBWRIGHT_SKIP_BROWSER:-}" = 1 ]; then
        echo "chromium is not installed; the browser tests are skipped (HUBWRIGHT_SKIP_BROWSER=1)" >&2; exit 0
    fi
    if [ "$(id -u)" = 0 ]; then sudo=(); elif sudo -n true 2>/dev/null; then sudo=(sudo -n); else
        echo "chromium is not installed at $chromium and installing it needs root: run 'sudo apt-get install -y chromium', or set HUBWRIGHT_SKIP_BROWSER=1 to skip the browser tests" >&2
        exit 0
    fi
    echo "chromium is not installed; installing Debian's chromium with apt-get…" >&2
    log=$(mktemp)
    if ! { "${sudo[@]}" apt-get update -qq \
        && "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; } >"$log" 2>&1; then
        tail -n 20 "$log" >&2; echo "installing chromium failed (full output: $log)" >&2; exit 1
    fi
    rm -f "$log"
    echo "installed $("$chromium" --version 2>/dev/null || echo chromium)" >&2

# promtool checks the chart's alerts and dashboard queries
# (tests/suite/chart_monitoring.rs); HUBWRIGHT_SKIP_PROMTOOL=1 skips them.
# Install Debian's prometheus package for its promtool when it is missing.
promtool-up:
    #!/usr/bin/env bash
    set -euo pipefail
    command -v promtool >/dev/null && exit 0
    if [ "${HUBWRIGHT_SKIP_PROMTOOL:-}" = 1 ]; then
        echo "promtool is not installed; its checks are skipped (HUBWRIGHT_SKIP_PROMTOOL=1)" >&2; exit 0
    fi
    if [ "$(id -u)" = 0 ]; then sudo=(); elif sudo -n true 2>/dev/null; then sudo=(sudo -n); else
        echo "promtool is not installed and installing it needs root: run 'sudo apt-get install -y prometheus', or set HUBWRIGHT_SKIP_PROMTOOL=1 to skip its checks" >&2
        exit 0
    fi
    echo "promtool is not installed; installing Debian's prometheus package with apt-get…" >&2
    log=$(mktemp)
    if ! { "${sudo[@]}" apt-get update -qq \
        && "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus; } >"$log" 2>&1; then
        tail -n 20 "$log" >&2; echo "installing prometheus failed (full output: $log)" >&2; exit 1
    fi
    rm -f "$log"
    # Only promtool is wanted: where systemd started the package's server, stop it.
    if command -v systemctl >/dev/null && systemctl is-active -q prometheus 2>/dev/null; then
        "${sudo[@]}" systemctl disable --now prometheus >/dev/null 2>&1 || true
    fi
    echo "installed $(promtool --version 2>&1 | head -n 1)" >&2

_create-db name:
    psql -qtA {{pg_admin}} -c "SELECT 1 FROM pg_database WHERE datname = '{{name}}'" | grep -q 1 \
        || psql -q {{pg_admin}} -c "CREATE DATABASE {{name}}"

_recreate-db name:
    psql -q {{pg_admin}} -c "DROP DATABASE IF EXISTS {{name}} WITH (FORCE)" -c "CREATE DATABASE {{name}}"

# Test databases go to a tablespace in RAM (/dev/shm) when the server runs on
# this machine: copying the template is mostly creating files, which ext4
# makes slow for a suite that creates and drops hundreds of databases
# (docs/development.md). tmpfs is empty after a reboot, and the databases in
# it with it: they are dropped and the tablespace made again. Where the
# server is elsewhere, or the directory cannot be given to its owner, nothing
# is done and the tests use the default tablespace.
_test-tablespace:
    #!/usr/bin/env bash
    set -euo pipefail
    dir=/dev/shm/hubwright-tests
    q() { psql -qtAX {{pg_admin}} -c "$1"; }
    data=$(q "SHOW data_directory" 2>/dev/null) || exit 0
    [ -d /dev/shm ] && [ -d "$data" ] || exit 0
    exists=$(q "SELECT 1 FROM pg_tablespace WHERE spcname = 'hubwright_tests'")
    if [ -n "$exists" ] && [ -n "$(ls -A "$dir" 2>/dev/null)" ]; then exit 0; fi
    if [ -n "$exists" ]; then
        echo "$dir is gone (a reboot empties it): dropping the test databases it held and making it again" >&2
        q "SELECT d.datname FROM pg_database d JOIN pg_tablespace t ON t.oid = d.dattablespace WHERE t.spcname = 'hubwright_tests'" \
            | while read -r db; do q "DROP DATABASE IF EXISTS $db WITH (FORCE)" 2>/dev/null; done
        q "DROP TABLESPACE hubwright_tests"
    fi
    owner=$(stat -c %U "$data")
    if ! { mkdir -p "$dir" && chown "$owner:" "$dir"; } 2>/dev/null; then
        echo "test databases stay on disk: $dir cannot be made for $owner (run just test as root for the faster suite)" >&2
        exit 0
    fi
    q "CREATE TABLESPACE hubwright_tests LOCATION '$dir'"
    echo "test databases go to $dir (tablespace hubwright_tests)" >&2

# Tests drop their databases when they pass; this removes what failed runs left
# over an hour ago (a database's name starts with its UUIDv7's milliseconds),
# so a suite running elsewhere on the same server keeps its own.
_sweep-test-dbs:
    psql -qtA {{pg_admin}} -c "SELECT datname FROM pg_database WHERE datname LIKE 'hw\_test\_%' AND ('x' || substr(datname, 9, 12))::bit(48)::bigint < extract(epoch FROM now() - interval '1 hour') * 1000" \
        | while read -r db; do psql -q {{pg_admin}} -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"; done
