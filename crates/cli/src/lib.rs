//! hubwright-cli: the `hubwright` binary as a library. It parses flags and
//! wires the library crates together; no business logic lives here.
//!
//! The binary is `main_with(Extensions::default())`. The test build of the
//! binary (`hubwright-test`, in `tests/`) is the same program with the
//! testkit's step kinds registered and its crash points armed, so no release
//! crate depends on the test kit.

mod client;
mod cmd;
mod contexts;
mod extensions;
mod output;
mod port_forward;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

pub use cmd::serve;
pub use extensions::Extensions;

/// A durable workflow engine that provisions self-service JupyterHubs.
#[derive(Debug, Parser)]
#[command(
    name = "hubwright",
    version,
    about,
    after_help = "Examples:
  hubwright config set-context prod --server https://hubwright.example.org --token-command 'pass show hubwright'
  hubwright env create alice-lab --wait
  hubwright env list --watch
  hubwright run list --state failed
  hubwright completion bash > /etc/bash_completion.d/hubwright

Exit codes: 0 done, 1 failed (or not confirmed), 2 bad usage, 3 refused by the API (4xx), 4 API unreachable or failing (5xx)."
)]
struct Cli {
    #[command(flatten)]
    globals: Globals,

    #[command(subcommand)]
    command: Command,
}

/// Options every command takes, shown under their own heading.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Global options")]
struct Globals {
    /// The named context (server and token) to use from the config file (`hubwright config`).
    #[arg(long, env = "HUBWRIGHT_CONTEXT", global = true)]
    context: Option<String>,

    /// The hubwright API's URL; overrides the context's (default http://127.0.0.1:8080).
    #[arg(long, env = "HUBWRIGHT_URL", global = true)]
    server: Option<String>,

    /// Bearer token for the API; overrides the context's. Prefer a context or the variable: a flag shows in `ps`.
    #[arg(long, env = "HUBWRIGHT_TOKEN", global = true, hide_env_values = true)]
    token: Option<String>,

    /// How API commands print.
    #[arg(short = 'o', long, value_enum, global = true, default_value_t)]
    output: output::Format,

    /// Postgres connection URL, for `serve`, `admin`, `demo` and `bench`.
    #[arg(
        long,
        env = "DATABASE_URL",
        global = true,
        default_value = "postgres://root@127.0.0.1:5432/hubwright",
        hide_env_values = true
    )]
    database_url: String,

    /// Log format on stderr.
    #[arg(long, value_enum, global = true, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    /// Lines for people.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Ask for, list, show, extend and delete environments.
    #[command(subcommand)]
    Env(cmd::env::Command),
    /// List, show, follow, retry and cancel runs.
    #[command(subcommand)]
    Run(cmd::run::Command),
    /// See the templates environments are made from, and their parameters.
    #[command(subcommand)]
    Template(cmd::template::Command),
    /// See the warm pools: ready members that requests take over (operators).
    #[command(subcommand)]
    Pool(cmd::pool::Command),
    /// Create, list and revoke API tokens (admin).
    #[command(subcommand)]
    Token(cmd::token::Command),
    /// The audit trail: who changed what, when, from where (admin).
    #[command(subcommand)]
    Audit(cmd::audit::Command),
    /// List, approve and deny the approvals runs wait on.
    #[command(subcommand)]
    Approval(cmd::approval::Command),
    /// Named contexts: which API to talk to and where its token comes from.
    #[command(subcommand)]
    Config(cmd::config::Command),
    /// Print a completion script for bash, zsh or fish.
    #[command(after_help = "Examples:
  hubwright completion bash > /etc/bash_completion.d/hubwright
  hubwright completion zsh > \"${fpath[1]}/_hubwright\"
  hubwright completion fish > ~/.config/fish/completions/hubwright.fish")]
    Completion {
        /// The shell.
        shell: Shell,
    },
    /// Run the worker and the API (both unless one is chosen).
    Serve(Box<cmd::serve::Args>),
    /// Check the workflow files.
    #[command(subcommand)]
    Workflows(cmd::workflows::Command),
    /// Straight to the database: migrations, the first admin token, engine-level runs.
    #[command(subcommand)]
    Admin(cmd::admin::Command),
    /// Migrate, start a worker and run the demo workflow, printing each step.
    Demo(cmd::demo::Args),
    /// Print the OpenAPI document of the REST API.
    Openapi,
    /// Run one benchmark workload against a fresh database and print its figures.
    Bench(cmd::bench::Args),
    /// `admin migrate`, under the name deployments already call it by.
    #[command(hide = true)]
    Migrate,
}

/// The shells `completion` writes for.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// Runs the `hubwright` command line with `extensions`: parses the arguments,
/// runs the command on a new runtime, and returns the exit code.
pub fn main_with(extensions: Extensions) -> std::process::ExitCode {
    let matches = command().get_matches();
    let cli = match <Cli as clap::FromArgMatches>::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(err) => err.exit(),
    };
    // Spans are exported by `serve` alone; its flags are known before it runs.
    let otlp = match &cli.command {
        Command::Serve(args) => args.telemetry().otlp(),
        _ => None,
    };
    let format = match cli.globals.log_format {
        LogFormat::Text => hubwright_telemetry::logging::Format::Text,
        LogFormat::Json => hubwright_telemetry::logging::Format::Json,
    };
    let logging = match hubwright_telemetry::logging::init(format, otlp.as_ref()) {
        Ok(logging) => logging,
        Err(err) => {
            eprintln!("error: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    if let Some(otlp) = &otlp {
        tracing::info!(endpoint = %otlp.endpoint, service = %otlp.service_name, "exporting traces");
    }
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
    let code = match runtime.block_on(dispatch(cli, extensions)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    };
    // The exporter's thread posts what is still buffered.
    logging.shutdown();
    code
}

async fn dispatch(cli: Cli, ext: Extensions) -> anyhow::Result<std::process::ExitCode> {
    let Globals {
        context,
        server,
        token,
        output,
        database_url: url,
        ..
    } = cli.globals;
    let api = || -> anyhow::Result<client::Client> {
        let file = contexts::ConfigFile::load(&contexts::path()?)?;
        let endpoint = contexts::resolve(
            &file,
            context.as_deref(),
            server.as_deref(),
            token.as_deref(),
        )?;
        let token = endpoint.token.ok_or_else(|| {
            anyhow::anyhow!(
                "--token: set HUBWRIGHT_TOKEN, pass --token, or use a context with a token (`hubwright config set-context`); tokens come from `hubwright token create`"
            )
        })?;
        Ok(client::Client::new(&endpoint.server, &token))
    };
    match cli.command {
        Command::Env(command) => api_result(cmd::env::run(&api()?, output, command).await),
        Command::Run(command) => api_result(cmd::run::run(&api()?, output, command).await),
        Command::Template(command) => {
            api_result(cmd::template::run(&api()?, output, command).await)
        }
        Command::Pool(command) => api_result(cmd::pool::run(&api()?, output, command).await),
        Command::Token(command) => api_result(cmd::token::run(&api()?, output, command).await),
        Command::Audit(command) => api_result(cmd::audit::run(&api()?, output, command).await),
        Command::Approval(command) => {
            api_result(cmd::approval::run(&api()?, output, command).await)
        }
        Command::Config(command) => cmd::config::run(output, server, command),
        Command::Completion { shell } => {
            let shell = match shell {
                Shell::Bash => clap_complete::Shell::Bash,
                Shell::Zsh => clap_complete::Shell::Zsh,
                Shell::Fish => clap_complete::Shell::Fish,
            };
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command(), "hubwright", &mut script);
            output::write_stdout(&String::from_utf8_lossy(&script));
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Migrate => cmd::migrate(&url).await,
        Command::Admin(command) => cmd::admin::run(&url, command, ext).await,
        Command::Serve(args) => cmd::serve::run(&url, *args, ext).await,
        Command::Workflows(command) => cmd::workflows::run(command, ext),
        Command::Demo(args) => cmd::demo::run(&url, args).await,
        Command::Bench(args) => cmd::bench::run(&url, args).await,
        Command::Openapi => {
            println!("{}", hubwright_api::openapi::document());
            Ok(std::process::ExitCode::SUCCESS)
        }
    }
}

/// The command line, its global options described once: `hubwright --help`
/// lists them, and each subcommand's help names them in one line instead of
/// repeating their descriptions between its own options.
fn command() -> clap::Command {
    // Clap copies a global option into each subcommand when it builds it,
    // unless the subcommand has one by that id already: a hidden copy is
    // parsed the same and left out of the subcommand's help.
    fn hide_globals(mut command: clap::Command, globals: &[clap::Arg]) -> clap::Command {
        let names: Vec<String> = command
            .get_subcommands()
            .map(|sub| sub.get_name().to_owned())
            .collect();
        for name in names {
            command = command.mut_subcommand(name, |sub| {
                let sub = globals
                    .iter()
                    .fold(sub, |sub, arg| sub.arg(arg.clone().hide(true)));
                let note = "Global options: --context, --server, --token, -o/--output, --database-url, --log-format (`hubwright --help`).";
                let after = match sub.get_after_help() {
                    Some(after) => format!("{after}\n\n{note}"),
                    None => note.to_owned(),
                };
                hide_globals(sub.after_help(after), globals)
            });
        }
        command
    }
    let root = Cli::command();
    let globals: Vec<clap::Arg> = root
        .get_arguments()
        .filter(|arg| arg.is_global_set())
        .cloned()
        .collect();
    hide_globals(root, &globals)
}

/// Whether `text` is a DNS-1123 label: what names environments and contexts.
fn is_label(text: &str) -> bool {
    hubwright_state::workflow::is_dns_label(text, 63)
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

#[cfg(test)]
mod tests {
    /// Every command and every flag and argument says what it is for, and every
    /// command people run has examples.
    #[test]
    fn every_command_flag_and_argument_is_described() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            let path = format!("{path} {}", command.get_name());
            if !command.is_hide_set() && command.get_about().is_none() && path != " hubwright" {
                missing.push(format!("{path}: no description"));
            }
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" || arg.is_hide_set() {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} <{id}>: no description"));
                }
            }
            let leaf = command.get_subcommands().next().is_none();
            let api_group = [
                "env",
                "run",
                "template",
                "token",
                "audit",
                "config",
                "admin",
                "completion",
            ]
            .iter()
            .any(|group| path.starts_with(&format!(" hubwright {group}")));
            if leaf && api_group && command.get_after_help().is_none() {
                missing.push(format!("{path}: no examples"));
            }
            for sub in command.get_subcommands() {
                if sub.get_name() != "help" {
                    walk(sub, &path, missing);
                }
            }
        }
        let mut missing = Vec::new();
        let command = super::command();
        // Duplicate flags across a command and the global options panic here.
        command.clone().debug_assert();
        walk(&command, "", &mut missing);
        assert!(missing.is_empty(), "{missing:#?}");
    }
}
