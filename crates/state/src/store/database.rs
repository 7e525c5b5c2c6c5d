//! Creating hubwright's database when it does not exist yet, so that
//! `hubwright admin migrate` is the only step a new installation needs; and
//! telling "the server is away" from "the settings are wrong", so `serve`
//! waits for the one and stops at the other.

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

use crate::{Error, Result, Store};

/// The maintenance databases a server normally has, tried in order to issue
/// `CREATE DATABASE` from.
const MAINTENANCE: [&str; 2] = ["postgres", "template1"];

impl Store {
    /// Creates the database `url` names, connecting to a maintenance database
    /// (`postgres`, else `template1`) on the same server as the same user.
    /// Returns false when it already exists. A user who may not create
    /// databases gets the server's refusal; [`create_database_command`] is
    /// what to tell them to run.
    pub async fn create_database_if_missing(url: &str) -> Result<bool> {
        let options: PgConnectOptions = url.parse()?;
        let name = options.get_database().unwrap_or(options.get_username());
        let name = name.to_owned();
        let mut last = None;
        for maintenance in MAINTENANCE {
            let admin = options
                .clone()
                .database(maintenance)
                .log_statements(tracing::log::LevelFilter::Trace);
            let mut conn = match sqlx::PgConnection::connect_with(&admin).await {
                Ok(conn) => conn,
                Err(err) => {
                    last = Some(err);
                    continue;
                }
            };
            let exists: bool = sqlx::query_scalar!(
                r#"SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS "exists!""#,
                name
            )
            .fetch_one(&mut conn)
            .await?;
            if exists {
                conn.close().await.ok();
                return Ok(false);
            }
            // An identifier cannot be a bind parameter; quoting it (doubling
            // any `"`) keeps the name exactly as the URL has it.
            let statement = format!("CREATE DATABASE {}", quote_identifier(&name));
            let created = sqlx::query(sqlx::AssertSqlSafe(statement))
                .execute(&mut conn)
                .await;
            conn.close().await.ok();
            return match created {
                Ok(_) => Ok(true),
                // 42P04 duplicate_database: another process created it meanwhile.
                Err(sqlx::Error::Database(err)) if err.code().as_deref() == Some("42P04") => {
                    Ok(false)
                }
                Err(err) => Err(err.into()),
            };
        }
        Err(last.map_or_else(
            || Error::Invalid {
                field: "database URL".to_owned(),
                rule: "names no server".to_owned(),
            },
            Error::from,
        ))
    }
}

impl Store {
    /// Opens one connection to `url` and closes it again: whether the
    /// server can be reached now, with the cause when not. (A pool retries a
    /// refused connection until its own timeout and then reports only that
    /// it timed out.) The caller bounds how long it may take.
    pub async fn probe(url: &str) -> Result<()> {
        let options: PgConnectOptions = url.parse()?;
        let options = options.log_statements(tracing::log::LevelFilter::Trace);
        let conn = sqlx::PgConnection::connect_with(&options).await?;
        conn.close().await.ok();
        Ok(())
    }
}

impl Error {
    /// Whether this is the server saying the database does not exist
    /// (SQLSTATE 3D000), which [`Store::create_database_if_missing`] fixes.
    pub fn is_missing_database(&self) -> bool {
        matches!(self, Error::Database(sqlx::Error::Database(err)) if err.code().as_deref() == Some("3D000"))
    }

    /// Whether the server could not be reached or is not taking connections
    /// yet: network errors, timeouts, connection exceptions (SQLSTATE class
    /// 08), a server starting or shutting down (57P01–57P03) or out of
    /// connections (53300). These pass with time; a wrong password or a
    /// missing database do not.
    pub fn is_unreachable(&self) -> bool {
        match self {
            Error::Database(
                sqlx::Error::Io(_)
                | sqlx::Error::Protocol(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::WorkerCrashed,
            ) => true,
            Error::Database(sqlx::Error::Database(err)) => err.code().is_some_and(|code| {
                code.starts_with("08") || ["57P01", "57P02", "57P03", "53300"].contains(&&*code)
            }),
            _ => false,
        }
    }
}

/// `host:port` of the server `url` names (or the socket directory), for
/// messages: never the user or the password.
pub fn server_address(url: &str) -> String {
    match url.parse::<PgConnectOptions>() {
        Ok(options) if options.get_host().starts_with('/') => options.get_host().to_owned(),
        Ok(options) => format!("{}:{}", options.get_host(), options.get_port()),
        Err(_) => "the configured URL".to_owned(),
    }
}

/// The command that creates the database `url` names, owned by the URL's
/// user, for someone allowed to create databases: `psql` against the
/// maintenance database of the same server.
pub fn create_database_command(url: &str) -> Option<String> {
    let options: PgConnectOptions = url.parse().ok()?;
    let name = options.get_database().unwrap_or(options.get_username());
    let owner = options.get_username();
    let host = options.get_host();
    let host = if host.starts_with('/') {
        format!("host={host}")
    } else {
        format!("host={host} port={}", options.get_port())
    };
    let statement = format!(
        "CREATE DATABASE {} OWNER {}",
        quote_identifier(name),
        quote_identifier(owner)
    );
    Some(format!(
        "psql \"{host} dbname=postgres\" -c '{}'",
        statement.replace('\'', "'\\''")
    ))
}

fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_address_names_host_and_port_and_never_the_password() {
        assert_eq!(
            server_address("postgres://root:s3cret@db.example.org:5433/hubwright"),
            "db.example.org:5433"
        );
        assert_eq!(
            server_address("postgres://root@localhost/hubwright"),
            "localhost:5432"
        );
    }

    #[test]
    fn the_printed_command_creates_the_named_database_on_the_same_server() {
        assert_eq!(
            create_database_command("postgres://root@db.example.org:5433/hubwright").unwrap(),
            r#"psql "host=db.example.org port=5433 dbname=postgres" -c 'CREATE DATABASE "hubwright" OWNER "root"'"#
        );
        assert_eq!(quote_identifier(r#"a"b"#), r#""a""b""#);
    }
}
