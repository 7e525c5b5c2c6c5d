use uuid::Uuid;

use crate::model::RunState;

/// Everything that can go wrong in the state crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database could not be reached or answered with an error.
    #[error("database error: {0}")]
    Database(sqlx::Error),

    /// The database refused a value it cannot store (Postgres 22P05,
    /// untranslatable character, or 22021, not in the encoding: a NUL in
    /// text). Caused by input, not by the database being down.
    #[error("the database cannot store a value: {0}")]
    Unstorable(String),

    /// Applying migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),

    /// No run has this id.
    #[error("run {0} not found")]
    RunNotFound(Uuid),

    /// No environment has this id.
    #[error("environment {0} not found")]
    EnvironmentNotFound(Uuid),

    /// No API token has this id.
    #[error("token {0} not found")]
    TokenNotFound(Uuid),

    /// The request conflicts with what exists (a name taken, a state that does
    /// not allow it); the message says what.
    #[error("{field}: {rule}")]
    Conflict { field: String, rule: String },

    /// The requested transition is not allowed from the run's current state.
    #[error("cannot {action} run {run_id}: it is {state} ({rule})")]
    IllegalTransition {
        run_id: Uuid,
        action: &'static str,
        state: RunState,
        rule: &'static str,
    },

    /// The caller no longer holds the run's lease (another worker took over, or the
    /// run was cancelled); nothing was written.
    #[error("lease on run {run_id} lost (token {token} is no longer current)")]
    LeaseLost { run_id: Uuid, token: i64 },

    /// An argument broke a rule; the message names the field and the rule.
    #[error("{field}: {rule}")]
    Invalid { field: String, rule: String },

    /// One more environment would go past a limit of the policy file; the
    /// breach names the limit, its value, the current use and the rule.
    #[error("{0}")]
    LimitExceeded(Box<crate::policy::Breach>),

    /// A workflow file could not be read, parsed or validated.
    #[error("{0}")]
    Workflow(#[from] crate::workflow::WorkflowError),
}

/// Postgres error codes for text it cannot store: `untranslatable_character`
/// (`\u0000` in jsonb) and `character_not_in_repertoire` (a NUL byte in text).
const UNSTORABLE_CODES: &[&str] = &["22P05", "22021"];

impl From<sqlx::Error> for Error {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::Database(db)
                if db
                    .code()
                    .is_some_and(|code| UNSTORABLE_CODES.contains(&code.as_ref())) =>
            {
                Self::Unstorable(db.message().to_owned())
            }
            _ => Self::Database(err),
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
