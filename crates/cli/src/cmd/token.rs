//! `hubwright token create`: API tokens, printed once.

use std::process::ExitCode;

use clap::Subcommand;
use hubwright_state::model::Role;
use hubwright_state::{Clock, SystemClock};

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
    },
    /// Revoke a token by its id; it stops working at once.
    Revoke {
        /// The id printed when the token was created.
        id: uuid::Uuid,
    },
}

pub async fn run(url: &str, command: Command) -> anyhow::Result<ExitCode> {
    let store = super::connect(url, 1).await?;
    match command {
        Command::Create { role, subject } => {
            let token = store
                .create_token(&subject, role, SystemClock.now())
                .await?;
            eprintln!(
                "token {} for {} ({}); it is shown once and cannot be recovered:",
                token.id, token.subject, token.role
            );
            println!("{}", token.secret);
            Ok(ExitCode::SUCCESS)
        }
        Command::Revoke { id } => {
            store.revoke_token(id, SystemClock.now()).await?;
            println!("token {id} revoked");
            Ok(ExitCode::SUCCESS)
        }
    }
}
