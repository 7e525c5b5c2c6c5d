//! Creating hubwright's database when it does not exist yet, so that
//! `hubwright admin migrate` is the only step a new installation needs.

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

impl Error {
    /// Whether this is the server saying the database does not exist
    /// (SQLSTATE 3D000), which [`Store::create_database_if_missing`] fixes.
    pub fn is_missing_database(&self) -> bool {
        matches!(self, Error::Database(sqlx::Error::Database(err)) if err.code().as_deref() == Some("3D000"))
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
    fn the_printed_command_creates_the_named_database_on_the_same_server() {
        assert_eq!(
            create_database_command("postgres://root@db.example.org:5433/hubwright").unwrap(),
            r#"psql "host=db.example.org port=5433 dbname=postgres" -c 'CREATE DATABASE "hubwright" OWNER "root"'"#
        );
        assert_eq!(quote_identifier(r#"a"b"#), r#""a""b""#);
    }
}
