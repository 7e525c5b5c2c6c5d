//! `hubwright token ...`: API tokens. Through the API with an admin token; the
//! first admin token is made with `--bootstrap`, straight in the database.

use std::process::ExitCode;

use clap::Subcommand;
use hubwright_state::model::Role;
use hubwright_state::store::tokens::TokenInfo;
use hubwright_state::{Clock, SystemClock};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::client::{Client, ClientError};
use crate::output::{self, Format};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a token and print it once; only its hash is stored.
    Create {
        /// developer, operator or admin.
        #[arg(long)]
        role: Role,
        /// Who the token authenticates (a user or service account).
        #[arg(long)]
        subject: String,
        /// Write it straight into the database (DATABASE_URL) instead of asking
        /// the API: how the first admin token is made.
        #[arg(long)]
        bootstrap: bool,
    },
    /// List tokens (admin): ids, subjects, roles, who made them, last use.
    List,
    /// Revoke a token by its id; it stops working at once.
    Revoke {
        /// The id printed when the token was created.
        id: Uuid,
        /// Revoke it straight in the database (DATABASE_URL): for a lost admin token.
        #[arg(long)]
        bootstrap: bool,
    },
}

/// The API's answer to a create: the token and its secret, once.
#[derive(Debug, Deserialize)]
struct CreatedToken {
    #[serde(flatten)]
    token: TokenInfo,
    secret: String,
}

#[derive(Debug, Deserialize)]
struct TokenList {
    items: Vec<TokenInfo>,
}

/// Runs the commands that go straight to the database; the rest go to [`api`].
pub async fn run(
    database_url: &str,
    api: impl FnOnce() -> anyhow::Result<Client>,
    format: Format,
    command: Command,
) -> anyhow::Result<Result<ExitCode, ClientError>> {
    match command {
        Command::Create {
            role,
            subject,
            bootstrap: true,
        } => {
            let store = super::connect(database_url, 1).await?;
            let issued = store
                .create_token(&subject, role, SystemClock.now())
                .await?;
            print_secret(issued.id, &issued.subject, issued.role, &issued.secret);
            Ok(Ok(ExitCode::SUCCESS))
        }
        Command::Revoke {
            id,
            bootstrap: true,
        } => {
            let store = super::connect(database_url, 1).await?;
            let token = store.revoke_token(id, SystemClock.now()).await?;
            println!("token {} ({}) revoked", token.id, token.subject);
            Ok(Ok(ExitCode::SUCCESS))
        }
        command => Ok(api_command(&api()?, format, command).await),
    }
}

async fn api_command(
    client: &Client,
    format: Format,
    command: Command,
) -> Result<ExitCode, ClientError> {
    match command {
        Command::Create { role, subject, .. } => {
            let created: CreatedToken = client
                .post(
                    "/v1/tokens",
                    &json!({ "role": role, "subject": subject }),
                    None,
                )
                .await?;
            print_secret(
                created.token.id,
                &created.token.subject,
                created.token.role,
                &created.secret,
            );
        }
        Command::List => {
            let list: TokenList = client.get("/v1/tokens").await?;
            match format {
                Format::Json => {
                    println!("{}", serde_json::to_string(&list.items).unwrap_or_default())
                }
                Format::Table => print!("{}", output::tokens_table(&list.items)),
            }
        }
        Command::Revoke { id, .. } => {
            let token: TokenInfo = client.delete(&format!("/v1/tokens/{id}")).await?;
            println!("token {} ({}) revoked", token.id, token.subject);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The secret alone goes to stdout, so `TOKEN=$(hubwright token create ...)` works.
fn print_secret(id: Uuid, subject: &str, role: Role, secret: &str) {
    eprintln!("token {id} for {subject} ({role}); it is shown once and cannot be recovered:");
    println!("{secret}");
}
