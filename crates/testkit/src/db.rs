use hubwright_state::Store;
use sqlx::{Connection, Executor, PgConnection};

/// The server tests create their databases on. `HUBWRIGHT_TEST_DATABASE_URL`
/// overrides the local default (trust auth as root, as `just test` sets up).
pub fn admin_url() -> String {
    std::env::var("HUBWRIGHT_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/postgres".to_owned())
}

/// A database of its own for one test, migrated, dropped by [`TestDatabase::drop_now`]
/// (left behind for inspection when the test fails; `just test` sweeps leftovers).
#[derive(Debug)]
pub struct TestDatabase {
    /// Its name.
    pub name: String,
    /// A URL other processes can connect with.
    pub url: String,
    /// A store on it.
    pub store: Store,
}

impl TestDatabase {
    /// Creates and migrates a fresh database.
    pub async fn create() -> Self {
        let admin = admin_url();
        let name = format!("hw_test_{}", uuid::Uuid::now_v7().simple());
        let mut conn = PgConnection::connect(&admin)
            .await
            .expect("connect to the test Postgres (is it running? `just db-up`)");
        conn.execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("create test database");
        conn.close().await.ok();
        let url = with_database(&admin, &name);
        let store = Store::connect(&url, 20)
            .await
            .expect("connect to test database");
        store.migrate().await.expect("migrate test database");
        Self { name, url, store }
    }

    /// Drops the database (call at the end of a passing test).
    pub async fn drop_now(self) {
        self.store.pool().close().await;
        if let Ok(mut conn) = PgConnection::connect(&admin_url()).await {
            let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
            conn.execute(sql.as_str()).await.ok();
        }
    }
}

/// `url` with its database path replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let path_start = base[authority_end..]
        .find('/')
        .map(|i| i + authority_end)
        .unwrap_or(base.len());
    let mut out = format!("{}/{name}", &base[..path_start]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn replaces_only_the_database() {
        assert_eq!(
            with_database("postgres://root@h:5432/postgres", "x"),
            "postgres://root@h:5432/x"
        );
        assert_eq!(
            with_database("postgres://h/db?sslmode=disable", "x"),
            "postgres://h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
    }
}
