//! hubwright-cli: the `hubwright` binary as a library. It parses flags and
//! wires the library crates together; no business logic lives here.
//!
//! The binary is `main_with(Extensions::default())`. The test build of the
//! binary (`hubwright-test`, in `tests/`) is the same program with the
//! testkit's step kinds registered and its crash points armed, so no release
//! crate depends on the test kit.

mod client;
mod cmd;
mod extensions;
mod output;
mod port_forward;

use clap::{Parser, Subcommand, ValueEnum};

pub use cmd::serve;
pub use extensions::Extensions;

/// A durable workflow engine that provisions self-service JupyterHubs.
#[derive(Debug, Parser)]
#[command(name = "hubwright", version, about)]
struct Cli {
    /// Postgres connection URL.
    #[arg(
        long,
        env = "DATABASE_URL",
        global = true,
        default_value = "postgres://root@127.0.0.1:5432/hubwright"
    )]
    database_url: String,

    /// The hubwright API, for the `env` and `run` commands.
    #[arg(
        long,
        env = "HUBWRIGHT_URL",
        global = true,
        default_value = "http://127.0.0.1:8080"
    )]
    server: String,

    /// Bearer token for the API (`hubwright token create`).
    #[arg(long, env = "HUBWRIGHT_TOKEN", global = true, hide_env_values = true)]
    token: Option<String>,

    /// How API commands print.
    #[arg(long, value_enum, global = true, default_value_t = output::Format::Table)]
    output: output::Format,

    /// Log format on stderr.
    #[arg(long, value_enum, global = true, default_value_t = LogFormat::Text)]
    log_format: LogFormat,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply database migrations.
    Migrate,
    /// Run the worker and the API (both unless one is chosen).
    Serve(Box<cmd::serve::Args>),
    /// Ask for, list, show, extend and delete environments (through the API).
    #[command(subcommand)]
    Env(cmd::env::Command),
    /// Start, inspect, retry and cancel runs.
    #[command(subcommand)]
    Run(cmd::run::Command),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(cmd::token::Command),
    /// Check the workflow files.
    #[command(subcommand)]
    Workflows(cmd::workflows::Command),
    /// Migrate, start a worker and run the demo workflow, printing each step.
    Demo(cmd::demo::Args),
    /// Print the OpenAPI document of the REST API.
    Openapi,
    /// Run one benchmark workload against a fresh database and print its figures.
    Bench(cmd::bench::Args),
}

/// Runs the `hubwright` command line with `extensions`: parses the arguments,
/// runs the command on a new runtime, and returns the exit code.
pub fn main_with(extensions: Extensions) -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli, extensions)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn dispatch(cli: Cli, ext: Extensions) -> anyhow::Result<std::process::ExitCode> {
    let url = cli.database_url;
    let api = || -> anyhow::Result<client::Client> {
        let token = cli.token.as_deref().ok_or_else(|| {
            anyhow::anyhow!(
                "--token: set HUBWRIGHT_TOKEN or pass --token (`hubwright token create`)"
            )
        })?;
        Ok(client::Client::new(&cli.server, token))
    };
    match cli.command {
        Command::Env(command) => api_result(cmd::env::run(&api()?, cli.output, command).await),
        Command::Migrate => cmd::migrate(&url).await,
        Command::Serve(args) => cmd::serve::run(&url, *args, ext).await,
        Command::Run(cmd::run::Command::Start(start)) => cmd::run::start(&url, start, ext).await,
        Command::Run(cmd::run::Command::Api(command)) => {
            api_result(cmd::run::run(&api()?, cli.output, command).await)
        }
        Command::Token(command) => {
            api_result(cmd::token::run(&url, api, cli.output, command).await?)
        }
        Command::Workflows(command) => cmd::workflows::run(command, ext),
        Command::Demo(args) => cmd::demo::run(&url, args).await,
        Command::Bench(args) => cmd::bench::run(&url, args).await,
        Command::Openapi => {
            println!("{}", hubwright_api::openapi::document());
            Ok(std::process::ExitCode::SUCCESS)
        }
    }
}

/// An API error becomes a message on stderr and its documented exit code.
fn api_result(
    result: Result<std::process::ExitCode, client::ClientError>,
) -> anyhow::Result<std::process::ExitCode> {
    match result {
        Ok(code) => Ok(code),
        Err(err) => {
            eprintln!("error: {err}");
            Ok(err.exit_code())
        }
    }
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init(),
    }
}
