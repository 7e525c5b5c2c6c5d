//! `hubwright token ...`: API tokens, through the API with an admin token. The
//! first admin token is made in the database: `hubwright admin token create`.

use std::process::ExitCode;

use clap::Subcommand;
use hubwright_state::model::Role;
use hubwright_state::store::tokens::TokenInfo;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::client::{Client, ClientError};
use crate::output::{self, Format};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a token and print it once; only its hash is stored (admin).
    #[command(after_help = "Example:
  hubwright token create --role developer --subject alice | hubwright config set-context alice --server http://127.0.0.1:8080 --token-stdin")]
    Create {
        /// developer, operator or admin.
        #[arg(long)]
        role: Role,
        /// Who the token authenticates (a user or service account).
        #[arg(long)]
        subject: String,
    },
    /// List tokens: ids, subjects, roles, who made them, last use (admin).
    #[command(after_help = "Example:\n  hubwright token list -o wide")]
    List,
    /// Revoke a token by its id; it stops working at once (admin).
    #[command(
        after_help = "Example:\n  hubwright token list -o name | xargs -n1 hubwright token revoke"
    )]
    Revoke {
        /// The id printed when the token was created.
        id: Uuid,
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

pub async fn run(
    client: &Client,
    format: Format,
    command: Command,
) -> Result<ExitCode, ClientError> {
    match command {
        Command::Create { role, subject } => {
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
            output::print_list(format, &list.items);
        }
        Command::Revoke { id } => {
            let token: TokenInfo = client.delete(&format!("/v1/tokens/{id}")).await?;
            crate::output::emitln!("token {} ({}) revoked", token.id, token.subject);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The secret alone goes to stdout, so `TOKEN=$(hubwright token create ...)` works.
pub fn print_secret(id: Uuid, subject: &str, role: Role, secret: &str) {
    eprintln!("token {id} for {subject} ({role}); it is shown once and cannot be recovered:");
    crate::output::emitln!("{secret}");
}
