use hubwright_state::Store;
use sqlx::{Connection, Executor, PgConnection};

/// The server tests create their databases on. `HUBWRIGHT_TEST_DATABASE_URL`
/// overrides the local default (trust auth as root, as `just test` sets up).
pub fn admin_url() -> String {
    std::env::var("HUBWRIGHT_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/postgres".to_owned())
}

/// A database of its own for one test, migrated, dropped when it goes out of
/// scope or by [`TestDatabase::drop_now`]
/// (left behind for inspection when the test fails; `just test` sweeps leftovers).
#[derive(Debug)]
pub struct TestDatabase {
    /// Its name.
    pub name: String,
    /// A URL other processes can connect with.
    pub url: String,
    /// A store on it.
    pub store: Store,
    /// Dropped already by [`TestDatabase::drop_now`].
    dropped: bool,
}

impl TestDatabase {
    /// Creates a fresh, migrated database: a copy of the template database
    /// for this build's migrations, which the first test to need it creates.
    /// Copying a template costs a fraction of migrating, and every test pays it.
    pub async fn create() -> Self {
        let admin = admin_url();
        let name = format!("hw_test_{}", uuid::Uuid::now_v7().simple());
        let mut conn = PgConnection::connect(&admin)
            .await
            .expect("connect to the test Postgres (is it running? `just db-up`)");
        let template = ensure_template(&mut conn, &admin).await;
        create_copy(&mut conn, &name, &template).await;
        conn.close().await.ok();
        let url = with_database(&admin, &name);
        let store = Store::connect(&url, 20)
            .await
            .expect("connect to test database");
        Self {
            name,
            url,
            store,
            dropped: false,
        }
    }

    /// Drops the database now rather than when it goes out of scope.
    pub async fn drop_now(mut self) {
        self.store.pool().close().await;
        drop_database(&self.name).await;
        self.dropped = true;
    }
}

impl Drop for TestDatabase {
    /// A test that passes leaves no database behind; one that fails keeps
    /// it for inspection (`just test` sweeps those an hour later). Before,
    /// about 100 tests a run left theirs, and the databases piling up made
    /// every later run slower (docs/development.md).
    fn drop(&mut self) {
        if self.dropped || std::thread::panicking() {
            return;
        }
        let name = self.name.clone();
        // Dropped inside the test's runtime, which must not block on its own
        // work: a thread and a runtime of its own.
        let _ = std::thread::spawn(move || {
            if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                runtime.block_on(drop_database(&name));
            }
        })
        .join();
    }
}

/// `DROP DATABASE name`, closing whatever is still connected to it.
async fn drop_database(name: &str) {
    if let Ok(mut conn) = PgConnection::connect(&admin_url()).await {
        let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
        conn.execute(sqlx::AssertSqlSafe(sql)).await.ok();
    }
}

/// The tablespace `just test` makes on tmpfs for test databases (justfile:
/// `_test-tablespace`). Copying the template creates about a thousand files,
/// and on ext4 each new inode is found past the inodes of the databases
/// dropped before it: that search alone was a seventh of the API tests' CPU.
/// With the copies in RAM the whole suite took 15% less time
/// (docs/development.md). Without it, the server's default tablespace.
const TEST_TABLESPACE: &str = "hubwright_tests";

/// Creates database `name` as a copy of `template`: in [`TEST_TABLESPACE`]
/// when the server has it, else (or when that fails, e.g. its tmpfs
/// directory went with a reboot) in the default one. FILE_COPY copies the
/// template's files instead of writing every block to the WAL (PostgreSQL
/// 15's default): a third less time per test. Older servers know only the
/// one way.
async fn create_copy(conn: &mut PgConnection, name: &str, template: &str) {
    let in_ram: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_tablespace WHERE spcname = $1)")
            .bind(TEST_TABLESPACE)
            .fetch_one(&mut *conn)
            .await
            .unwrap_or(false);
    let copy = format!("CREATE DATABASE {name} TEMPLATE {template}");
    let mut ways = Vec::new();
    if in_ram {
        ways.push(format!(
            "{copy} TABLESPACE {TEST_TABLESPACE} STRATEGY FILE_COPY"
        ));
    }
    ways.extend([format!("{copy} STRATEGY FILE_COPY"), copy]);
    let mut failures = Vec::new();
    for sql in ways {
        match conn.execute(sqlx::AssertSqlSafe(sql.clone())).await {
            Ok(_) => return,
            Err(err) => failures.push(format!("{sql}: {err}")),
        }
    }
    panic!("create test database:\n{}", failures.join("\n"));
}

/// The name of the template database for this build's migrations.
fn template_name() -> String {
    format!("hw_template_{}", Store::schema_fingerprint())
}

/// The migrated template database, created on first use. Tests run in
/// parallel processes: an advisory lock lets one create it while the others
/// wait, and it is created under another name and renamed, so no test ever
/// copies a half-migrated one.
async fn ensure_template(conn: &mut PgConnection, admin: &str) -> String {
    /// The advisory lock key: "hwtemplt" in ASCII.
    const LOCK: i64 = 0x6877_7465_6d70_6c74;
    let template = template_name();
    if database_exists(conn, &template).await {
        return template;
    }
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(LOCK)
        .execute(&mut *conn)
        .await
        .expect("lock the template database");
    if !database_exists(conn, &template).await {
        let building = format!("{template}_building");
        let statements = [
            format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)"),
            format!("CREATE DATABASE {building}"),
        ];
        for sql in statements {
            conn.execute(sqlx::AssertSqlSafe(sql))
                .await
                .expect("create the template database");
        }
        let store = Store::connect(&with_database(admin, &building), 2)
            .await
            .expect("connect to the template database");
        store
            .migrate()
            .await
            .expect("migrate the template database");
        store.pool().close().await;
        conn.execute(sqlx::AssertSqlSafe(format!(
            "ALTER DATABASE {building} RENAME TO {template}"
        )))
        .await
        .expect("name the template database");
        // Templates of older migrations are of no further use, but another
        // checkout on the same server (a second worktree, CI beside a
        // developer) may be using one right now: keep the few newest (OIDs
        // grow with creation) and drop the rest.
        let stale: Vec<String> = sqlx::query_scalar(
            "SELECT datname FROM pg_database WHERE datname LIKE 'hw\\_template\\_%' AND datname <> $1 \
             ORDER BY oid DESC OFFSET 3",
        )
        .bind(&template)
        .fetch_all(&mut *conn)
        .await
        .unwrap_or_default();
        for old in stale {
            conn.execute(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {old}"
            )))
            .await
            .ok();
        }
    }
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(LOCK)
        .execute(&mut *conn)
        .await
        .expect("unlock the template database");
    template
}

async fn database_exists(conn: &mut PgConnection, name: &str) -> bool {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(name)
        .fetch_one(conn)
        .await
        .expect("look for the template database")
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
