//! A PostgreSQL server of the test's own, for tests that restart it: the
//! shared server on 5432 serves every other test (and other checkouts) at the
//! same time, and restarting it would break them.
//!
//! `initdb` makes a throwaway cluster in a scratch directory, with trust
//! authentication for `root` on 127.0.0.1 and a port of its own; the server
//! runs as `postgres` when the test runs as root (PostgreSQL refuses root).
//! Dropping the handle stops the server and removes its files.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A private PostgreSQL server.
#[derive(Debug)]
pub struct PrivatePostgres {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    /// Some("postgres") when the test runs as root.
    run_as: Option<&'static str>,
}

/// Why a private server could not be had (missing binaries, initdb failed).
pub type Unavailable = String;

impl PrivatePostgres {
    /// Initialises and starts a server; Err says why not (the caller decides
    /// whether that skips something or fails the test).
    pub async fn start() -> Result<Self, Unavailable> {
        let bin = bindir().ok_or("no PostgreSQL server binaries (initdb, pg_ctl) were found")?;
        let data = crate::scratch_dir("private-postgres").join("data");
        std::fs::create_dir_all(&data)
            .map_err(|err| format!("create {}: {err}", data.display()))?;
        let root = std::fs::metadata("/proc/self").is_ok_and(|meta| meta.uid() == 0);
        let run_as = root.then_some("postgres");
        if let Some(user) = run_as {
            let dir = data.parent().unwrap_or(&data);
            run("chown", &["-R", &format!("{user}:{user}"), &path_text(dir)]).await?;
        }
        let port = free_port()?;
        let server = Self {
            bin,
            data,
            port,
            run_as,
        };
        server
            .pg(
                "initdb",
                &["-U", "root", "--auth=trust", "-E", "UTF8", "--no-sync"],
            )
            .await?;
        // fsync off: the machine does not crash in these tests, the server does.
        let options = format!(
            "-p {port} -k {dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300",
            dir = path_text(&server.data)
        );
        server
            .pg("pg_ctl", &["-o", &options, "-w", "-t", "60", "start"])
            .await?;
        Ok(server)
    }

    /// `postgres://root@127.0.0.1:<port>/<database>`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://root@127.0.0.1:{}/{database}", self.port)
    }

    /// Restarts the server as an operator would (`pg_ctl restart -m fast`:
    /// sessions are terminated, the server shuts down cleanly and starts
    /// again); returns how long it was away.
    pub async fn restart(&self) -> Result<Duration, Unavailable> {
        let began = Instant::now();
        self.pg("pg_ctl", &["-m", "fast", "-w", "-t", "60", "restart"])
            .await?;
        Ok(began.elapsed())
    }

    /// The server's log so far (`pg_ctl`'s log file).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.log()).unwrap_or_default()
    }

    fn log(&self) -> PathBuf {
        self.data.join("server.log")
    }

    /// Runs `tool` from the server's binaries on its data directory.
    async fn pg(&self, tool: &str, args: &[&str]) -> Result<(), Unavailable> {
        let data = path_text(&self.data);
        let log = path_text(&self.log());
        let program = path_text(&self.bin.join(tool));
        let mut all: Vec<&str> = vec![&program, "-D", &data];
        if tool == "pg_ctl" {
            all.extend(["-l", &log]);
        }
        all.extend_from_slice(args);
        match self.run_as {
            Some(user) => {
                let mut wrapped = vec!["-u", user, "--"];
                wrapped.extend(all);
                run("runuser", &wrapped).await
            }
            None => run(all[0], &all[1..]).await,
        }
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = path_text(&self.data);
        let pg_ctl = path_text(&self.bin.join("pg_ctl"));
        let args = [
            pg_ctl.as_str(),
            "-D",
            &data,
            "-m",
            "immediate",
            "-w",
            "stop",
        ];
        let stopped = match self.run_as {
            Some(user) => std::process::Command::new("runuser")
                .args(["-u", user, "--"])
                .args(args)
                .output(),
            None => std::process::Command::new(args[0])
                .args(&args[1..])
                .output(),
        };
        if stopped.is_ok_and(|out| out.status.success())
            && let Some(dir) = self.data.parent()
        {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The directory of `initdb` and `pg_ctl`: the one on `PATH`, else the
/// newest Debian-style `/usr/lib/postgresql/<version>/bin`.
fn bindir() -> Option<PathBuf> {
    let has_tools = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(dir) = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .find(|dir| has_tools(dir))
    {
        return Some(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, dir)| has_tools(dir))
        .collect();
    versions.sort();
    versions.pop().map(|(_, dir)| dir)
}

/// A port nothing listens on, which no outgoing connection takes before
/// the server binds it (`hubwright_sandbox::ports`).
fn free_port() -> Result<u16, Unavailable> {
    hubwright_sandbox::ports::free_port().map_err(|err| format!("find a free port: {err}"))
}

fn path_text(path: &Path) -> String {
    path.display().to_string()
}

/// Runs `program args`; Err carries its output when it fails.
async fn run(program: &str, args: &[&str]) -> Result<(), Unavailable> {
    let out = tokio::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|err| format!("run {program}: {err}"))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "{program} {} failed ({}): {}{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}
