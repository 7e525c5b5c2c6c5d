//! `hubwright config ...`: named contexts in the config file ([`crate::contexts`]).

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Subcommand;

use crate::contexts::{self, ConfigFile, Context};
use crate::output::{self, Format, Listing};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Add or change a context: the API's URL (the global --server, required
    /// for a new context) and where its token comes from.
    #[command(after_help = "Examples:
  hubwright token create --role developer --subject alice | hubwright config set-context prod --server https://hubwright.example.org --token-stdin
  hubwright config set-context lab --server http://lab:8080 --token-command 'pass show hubwright/lab' --use")]
    SetContext {
        /// The context's name.
        name: String,
        /// Read the token from standard input and keep it in the file (mode 0600).
        #[arg(long, conflicts_with = "token_command")]
        token_stdin: bool,
        /// A shell command that prints the token, run each time it is needed.
        #[arg(long)]
        token_command: Option<String>,
        /// Make it the current context too.
        #[arg(long = "use")]
        use_it: bool,
    },
    /// Make a context the one API commands use.
    #[command(after_help = "Example:\n  hubwright config use-context prod")]
    UseContext {
        /// The context's name.
        name: String,
    },
    /// List the contexts; `*` marks the current one. Tokens are never shown.
    #[command(after_help = "Example:\n  hubwright config get-contexts")]
    GetContexts,
    /// Print the current context's name.
    #[command(after_help = "Example:\n  hubwright config current-context")]
    CurrentContext,
    /// Remove a context.
    #[command(after_help = "Example:\n  hubwright config delete-context lab")]
    DeleteContext {
        /// The context's name.
        name: String,
    },
    /// Print the config file, tokens replaced by REDACTED.
    #[command(after_help = "Example:\n  hubwright config view -o json")]
    View,
}

/// One row of `get-contexts`.
#[derive(Debug, serde::Serialize)]
struct ContextRow {
    current: bool,
    name: String,
    server: String,
    token: &'static str,
}

impl Listing for ContextRow {
    const HEADERS: &'static [&'static str] = &["CURRENT", "NAME", "SERVER", "TOKEN"];
    fn cells(&self) -> Vec<String> {
        vec![
            if self.current { "*" } else { "" }.to_owned(),
            self.name.clone(),
            self.server.clone(),
            self.token.to_owned(),
        ]
    }
    fn name(&self) -> String {
        self.name.clone()
    }
}

/// Runs a config command; `server` is the global `--server` (`HUBWRIGHT_URL`).
pub fn run(format: Format, server: Option<String>, command: Command) -> anyhow::Result<ExitCode> {
    let path = contexts::path()?;
    let mut file = ConfigFile::load(&path)?;
    match command {
        Command::SetContext {
            name,
            token_stdin,
            token_command,
            use_it,
        } => {
            if !crate::is_label(&name) {
                bail!("name: `{name}` must be 1 to 63 lowercase letters, digits or `-`");
            }
            let existing = file.contexts.get(&name).cloned();
            let mut context = match (existing, server) {
                (Some(mut context), Some(server)) => {
                    context.server = server;
                    context
                }
                (Some(context), None) => context,
                (None, Some(server)) => Context {
                    server,
                    ..Context::default()
                },
                (None, None) => bail!("--server: a new context needs the API's URL"),
            };
            if token_stdin {
                context.token = Some(read_token()?);
                context.token_command = None;
            }
            if let Some(command) = token_command {
                context.token_command = Some(command);
                context.token = None;
            }
            file.contexts.insert(name.clone(), context);
            if use_it || file.current_context.is_none() {
                file.current_context = Some(name.clone());
            }
            file.save(&path)?;
            eprintln!("context `{name}` saved in {}", path.display());
        }
        Command::UseContext { name } => {
            if !file.contexts.contains_key(&name) {
                bail!(
                    "no context named `{name}` in {} (`hubwright config get-contexts` lists them)",
                    path.display()
                );
            }
            file.current_context = Some(name.clone());
            file.save(&path)?;
            eprintln!("switched to context `{name}`");
        }
        Command::GetContexts => {
            let rows: Vec<ContextRow> = file
                .contexts
                .iter()
                .map(|(name, context)| ContextRow {
                    current: file.current_context.as_deref() == Some(name),
                    name: name.clone(),
                    server: context.server.clone(),
                    token: context.token_source(),
                })
                .collect();
            output::print_list(format, &rows);
        }
        Command::CurrentContext => match &file.current_context {
            Some(name) => crate::output::emitln!("{name}"),
            None => bail!("no current context (`hubwright config use-context NAME` sets one)"),
        },
        Command::DeleteContext { name } => {
            if file.contexts.remove(&name).is_none() {
                bail!("no context named `{name}` in {}", path.display());
            }
            if file.current_context.as_deref() == Some(name.as_str()) {
                file.current_context = None;
            }
            file.save(&path)?;
            eprintln!("context `{name}` deleted");
        }
        Command::View => {
            let shown = file.redacted();
            output::print_one(format, &shown, "config", || {
                serde_yaml_ng::to_string(&shown).unwrap_or_default()
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The token from standard input: one line. On a terminal it is read without
/// echo, so it never appears on the screen.
fn read_token() -> anyhow::Result<String> {
    let token = if std::io::stdin().is_terminal() {
        rpassword::prompt_password("token: ").context("--token-stdin: cannot read the terminal")?
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("--token-stdin: cannot read standard input")?;
        line
    };
    let token = token.trim().to_owned();
    if token.is_empty() {
        bail!("--token-stdin: standard input held no token");
    }
    Ok(token)
}
