//! Real `hubwright` processes, for tests that kill, pause or stop them.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// A running `hubwright` child process whose log goes to a file.
#[derive(Debug)]
pub struct Process {
    child: Child,
    /// Where its stdout and stderr go (JSON lines).
    pub log: PathBuf,
}

impl Process {
    /// Starts `bin` with `args` against `database_url`; its log goes to `log`.
    pub fn start(bin: &Path, database_url: &str, args: &[&str], log: &Path) -> Self {
        Self::start_with_env(bin, database_url, args, &[], log)
    }

    /// Like [`Process::start`], with extra environment variables (which may
    /// override the defaults: the test secret key, `RUST_LOG`).
    pub fn start_with_env(
        bin: &Path,
        database_url: &str,
        args: &[&str],
        env: &[(&str, &str)],
        log: &Path,
    ) -> Self {
        let out = std::fs::File::create(log).expect("create log file");
        let err = out.try_clone().expect("clone log file");
        let child = Command::new(bin)
            .args(["--log-format", "json"])
            .args(args)
            .env("DATABASE_URL", database_url)
            .env(
                hubwright_state::secrets::KEY_VARIABLE,
                crate::TEST_SECRET_KEY,
            )
            .env("RUST_LOG", "info,hubwright_worker=debug")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .expect("start hubwright");
        Self {
            child,
            log: log.to_owned(),
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("process still running")
    }

    /// Sends a signal by name (`KILL`, `STOP`, `CONT`, `TERM`).
    pub fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Whether it has exited already (does not wait).
    pub fn has_exited(&mut self) -> bool {
        self.child.try_wait().expect("poll child").is_some()
    }

    /// SIGKILL, then reap it.
    pub async fn kill9(mut self) {
        self.signal("KILL");
        self.child.wait().await.expect("reap child");
    }

    /// Waits for it to exit within `within`, and returns its exit code.
    pub async fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let status = tokio::time::timeout(within, self.child.wait())
            .await
            .expect("process did not exit in time")
            .expect("wait for child");
        status.code()
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log contains `needle`, or panics after `within`.
    pub async fn wait_for_log(&self, needle: &str, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        while !self.log_text().contains(needle) {
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "`{needle}` not in the log within {within:?}:\n{}",
                    self.log_text()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The field `field` of the first JSON log line whose message is
    /// `message` (e.g. the address of `metrics listening`, when the process
    /// bound port 0), waiting for it up to `within`.
    pub async fn wait_for_logged(&self, message: &str, field: &str, within: Duration) -> String {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let log = self.log_text();
            let found = log
                .lines()
                .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
                .find(|line| line["message"] == message)
                .and_then(|line| line[field].as_str().map(str::to_owned));
            if let Some(found) = found {
                return found;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no `{message}` line with `{field}` in the log within {within:?}:\n{log}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The variable naming the crash point a `hubwright-test` process dies at.
pub const CRASH_VARIABLE: &str = "HUBWRIGHT_TESTKIT_CRASH";

/// The test build's crash point: aborts the process when [`CRASH_VARIABLE`]
/// names `name`, so a test can prove that what was committed before survives.
pub fn crash_point(name: &str) {
    if std::env::var(CRASH_VARIABLE).as_deref() == Ok(name) {
        eprintln!("testkit: crashing at {name}");
        std::process::abort();
    }
}
