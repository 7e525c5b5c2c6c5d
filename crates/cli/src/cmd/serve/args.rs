//! `serve`'s flags: which roles run, and how each behaves.

use std::net::SocketAddr;
use std::path::PathBuf;

use hubwright_state::workflow::Dur;

use super::database_wait::{DatabaseWait, parse_database_wait};
use super::limits::Limits;
use super::metrics::MetricsArgs;
use super::parse::{Leads, parse_leads, parse_rate};
use super::policy::PolicyArgs;
use super::telemetry::TelemetryArgs;

#[derive(Debug, clap::Args)]
#[command(after_help = SECRET_KEY_HELP)]
pub struct Args {
    /// Run the worker (claims and executes runs).
    #[arg(long)]
    pub(super) worker: bool,
    /// Serve the HTTP API.
    #[arg(long)]
    pub(super) api: bool,
    /// Run the TTL scheduler (tears expired environments down, warns before
    /// expiry, deletes audit entries and finished runs past their retention).
    /// Any number of replicas may run. None of the three flags: all three.
    #[arg(long)]
    pub(super) scheduler: bool,
    /// The scheduler's sweep for expiries its timer missed runs at least this often.
    #[arg(long, env = "HUBWRIGHT_EXPIRY_SWEEP_INTERVAL", default_value = "1m")]
    pub(super) expiry_sweep_interval: Dur,
    /// Record an `expiry_warning` event this long before each expiry
    /// (comma-separated; empty for none).
    #[arg(long, env = "HUBWRIGHT_EXPIRY_WARNINGS", default_value = "1h,10m", value_parser = parse_leads)]
    pub(super) expiry_warnings: Leads,
    /// Address the API listens on.
    #[arg(long, env = "HUBWRIGHT_LISTEN", default_value = "127.0.0.1:8080")]
    pub(super) listen: SocketAddr,
    /// The API's limits on connections, requests and event streams.
    #[command(flatten)]
    pub(super) limits: Limits,
    /// Metrics and probes on a port of their own.
    #[command(flatten)]
    pub(super) metrics: MetricsArgs,
    /// The audit trail's retention.
    #[command(flatten)]
    pub(super) audit: super::audit::AuditArgs,
    /// How long finished runs are kept.
    #[command(flatten)]
    pub(super) runs: super::run_retention::RunRetentionArgs,
    /// Directory of workflow files (templates): checked at start-up, and
    /// reloaded on SIGHUP and when they change. A change that does not load
    /// leaves the templates in force.
    #[arg(long, env = "HUBWRIGHT_WORKFLOWS", default_value = "workflows")]
    pub(super) workflows: PathBuf,
    /// How often the API and the scheduler look for changed workflow files
    /// (0s: on SIGHUP only).
    #[arg(long, env = "HUBWRIGHT_TEMPLATES_POLL_INTERVAL", default_value = "5s")]
    pub(super) templates_poll_interval: Dur,
    /// The clusters environments may be placed on (YAML: `clusters: {name:
    /// {kubeconfig, context, in_cluster, base_domain, tls_issuer, ingress_class}}`). Without
    /// it, one cluster `default`, reached like kubectl would.
    #[arg(long, env = "HUBWRIGHT_CLUSTERS")]
    pub(super) clusters: Option<PathBuf>,
    /// The policy file (limits, groups, template access).
    #[command(flatten)]
    pub(super) policy: PolicyArgs,
    /// Runs executed at once by this process.
    #[arg(long, env = "HUBWRIGHT_CONCURRENCY", default_value_t = 16)]
    pub(super) concurrency: usize,
    /// Lease on a claimed run; a worker silent for longer loses it.
    #[arg(long, env = "HUBWRIGHT_LEASE", default_value = "30s")]
    pub(super) lease: Dur,
    /// Fallback poll interval (wake-ups arrive by LISTEN/NOTIFY).
    #[arg(long, default_value = "1s")]
    pub(super) poll_interval: Dur,
    /// How often to look for runs of dead workers.
    #[arg(long, default_value = "10s")]
    pub(super) rescue_interval: Dur,
    /// How often a worker looks for extended environments whose namespace
    /// still carries the old `hubwright.io/expires-at` label.
    #[arg(long, env = "HUBWRIGHT_EXPIRY_LABEL_INTERVAL", default_value = "30s")]
    pub(super) expiry_label_interval: Dur,
    /// On SIGTERM, how long in-flight steps may take before their runs are released.
    #[arg(long, env = "HUBWRIGHT_SHUTDOWN_GRACE", default_value = "30s")]
    pub(super) shutdown_grace: Dur,
    /// Most runs claimed by one statement.
    #[arg(long, default_value_t = 32)]
    pub(super) claim_batch: usize,
    /// This worker's id in leases and events (default: host-pid-random).
    #[arg(long, env = "HUBWRIGHT_WORKER_ID")]
    pub(super) worker_id: Option<String>,
    /// Database connections of this process (default: from concurrency).
    #[arg(long)]
    pub(super) db_connections: Option<u32>,
    /// At start-up, how long to wait for the database to answer before
    /// giving up with exit status 1: `forever`, or a duration such as `10m`.
    /// Each attempt is logged with its cause; meanwhile the API's `/healthz`
    /// answers 200 and `/readyz` 503 naming the database. A wrong password, a
    /// missing database or a schema behind the binary stop it at once.
    #[arg(long, env = "HUBWRIGHT_DATABASE_WAIT", default_value = "forever", value_parser = parse_database_wait)]
    pub(super) database_wait: DatabaseWait,
    /// The OpenID provider whose JWTs the API accepts.
    #[command(flatten)]
    pub(super) oidc: super::oidc::OidcArgs,
    /// The web console.
    #[command(flatten)]
    pub(super) console: super::console::ConsoleArgs,
    /// Traces and the log filter.
    #[command(flatten)]
    pub(super) telemetry: TelemetryArgs,
    /// The scheduler POSTs each expiry warning and expiry here as JSON, in
    /// order, at least once (README: Time-to-live).
    #[arg(long, env = "HUBWRIGHT_WEBHOOK_URL")]
    pub(super) webhook_url: Option<String>,
    /// Signs webhook deliveries the Standard Webhooks way: `whsec_` and the
    /// base64 of 24 to 64 random bytes (`echo whsec_$(openssl rand -base64
    /// 32)`). Prefer the variable: a flag shows in `ps`.
    #[arg(
        long,
        env = "HUBWRIGHT_WEBHOOK_SECRET",
        hide_env_values = true,
        requires = "webhook_url"
    )]
    pub(super) webhook_secret: Option<String>,
    /// Requests a second each token (or OpenID user) may make on average; past
    /// its burst a caller gets 429 with Retry-After. 0 turns the limit off.
    #[arg(long, env = "HUBWRIGHT_RATE_LIMIT", default_value_t = 20.0, value_parser = parse_rate)]
    pub(super) rate_limit: f64,
    /// Requests a caller may make at once after a quiet spell.
    #[arg(long, env = "HUBWRIGHT_RATE_LIMIT_BURST", default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
    pub(super) rate_limit_burst: u32,
    /// Failed sign-ins (401) a second one client address may make on
    /// average before it gets 429 instead. 0 turns the limit off.
    #[arg(long, env = "HUBWRIGHT_AUTH_FAILURE_RATE_LIMIT", default_value_t = 1.0, value_parser = parse_rate)]
    pub(super) auth_failure_rate_limit: f64,
    /// Failed sign-ins one client address may make at once.
    #[arg(long, env = "HUBWRIGHT_AUTH_FAILURE_BURST", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub(super) auth_failure_burst: u32,
}

/// What `serve -h` says about the one setting that is never a flag (a key
/// on a command line would show in `ps`).
const SECRET_KEY_HELP: &str = "\
Environment:
  HUBWRIGHT_SECRET_KEY  Required to run the worker (the default): without it
                        `serve` does not start. 64 hex digits, e.g. from
                        `openssl rand -hex 32`; `id:hex,id:hex` to rotate (the
                        first seals, all open). It seals the hubs' credentials
                        in Postgres; keep it as you keep the database's backups.
                        `serve --api` alone does not need it.";

impl Args {
    /// The flags for traces and logs, which the process's logging is set up
    /// with before `serve` runs.
    pub fn telemetry(&self) -> &TelemetryArgs {
        &self.telemetry
    }
}

/// `hubwright serve ARGS…` parsed as the command line would, for callers
/// that start the server in-process (the tests): the error says which flag
/// broke which rule.
pub fn parse_args<'a>(argv: impl IntoIterator<Item = &'a str>) -> Result<Args, clap::Error> {
    #[derive(Debug, clap::Parser)]
    #[command(name = "serve")]
    struct Serve {
        #[command(flatten)]
        args: Args,
    }
    use clap::Parser;
    Serve::try_parse_from(std::iter::once("serve").chain(argv)).map(|serve| serve.args)
}
