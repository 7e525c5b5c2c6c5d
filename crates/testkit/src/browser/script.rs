//! Running one script: its environment, its deadline, its output streamed into
//! the test's, and what it left behind.

use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;

use super::Browser;

/// How long a script may run unless [`Script::deadline`] says otherwise.
const DEFAULT_DEADLINE: Duration = Duration::from_secs(90);

/// What the script keeps of its deadline to write its failure artifacts:
/// it gives up this much before the test kills it.
const ARTIFACT_TIME: Duration = Duration::from_secs(15);

/// How long the output readers may take to drain once the script has exited.
const DRAIN_WITHIN: Duration = Duration::from_secs(5);

/// `node tests/browser/<name>.mjs` with its inputs, not started yet.
#[derive(Debug)]
pub struct Script {
    browser: Browser,
    name: String,
    env: Vec<(String, String)>,
    deadline: Duration,
}

/// How a script ended.
#[derive(Debug)]
pub struct Outcome {
    /// `<name>.mjs`.
    pub script: String,
    /// Its exit status; `None` when it was killed at the deadline.
    pub status: Option<ExitStatus>,
    /// Every line it printed, stdout and stderr, in the order read.
    pub output: Vec<String>,
    /// Where its failure artifacts go; emptied before it starts.
    pub artifacts_dir: PathBuf,
    /// The screenshots and HTML files it wrote there, sorted.
    pub artifacts: Vec<PathBuf>,
}

impl Outcome {
    /// Whether the script exited 0.
    pub fn passed(&self) -> bool {
        self.status.is_some_and(|status| status.success())
    }

    /// How the script ended, everything it printed, and the paths of its
    /// failure artifacts, last where they are easy to find.
    pub fn report(&self) -> String {
        let ending = match self.status {
            Some(status) => format!("exited ({status})"),
            None => "was killed at its deadline".to_owned(),
        };
        let artifacts = if self.artifacts.is_empty() {
            format!("  (none in {})", self.artifacts_dir.display())
        } else {
            self.artifacts
                .iter()
                .map(|path| format!("  {}", path.display()))
                .collect::<Vec<_>>()
                .join("\n")
        };
        format!(
            "browser script {} {ending}; its output:\n{}\nfailure artifacts (a screenshot and \
             the HTML of each open page):\n{artifacts}",
            self.script,
            self.output.join("\n")
        )
    }
}

impl Script {
    pub(super) fn new(browser: Browser, name: &str) -> Self {
        Script {
            browser,
            name: name.to_owned(),
            env: Vec::new(),
            deadline: DEFAULT_DEADLINE,
        }
    }

    /// Passes `key=value` to the script (its inputs: URLs, users, tokens).
    pub fn env(mut self, key: &str, value: impl Into<String>) -> Self {
        self.env.push((key.to_owned(), value.into()));
        self
    }

    /// How long the whole script may take, chromium's start included; it
    /// gives up 15 s before (or at half of a short deadline) to write its
    /// artifacts, and is killed at the deadline.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// Runs the script and panics with [`Outcome::report`] unless it passed.
    pub async fn run(self) -> Outcome {
        let outcome = self.outcome().await;
        assert!(outcome.passed(), "{}", outcome.report());
        outcome
    }

    /// Runs the script and returns how it ended, passed or not. Panics only
    /// when node cannot be started at all.
    pub async fn outcome(self) -> Outcome {
        let file = format!("{}.mjs", self.name);
        let project = super::project_dir();
        let label = super::test_name().unwrap_or_else(|| self.name.clone());
        let artifacts_dir = super::artifacts_root().join(file_name(&label));
        match std::fs::remove_dir_all(&artifacts_dir) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => panic!(
                "removing old browser artifacts {}: {err}",
                artifacts_dir.display()
            ),
            _ => {}
        }
        let own_deadline = self
            .deadline
            .saturating_sub(ARTIFACT_TIME)
            .max(self.deadline / 2);
        let mut command = Command::new(&self.browser.node);
        command
            .arg(&file)
            .current_dir(&project)
            .env("HUBWRIGHT_CHROMIUM", &self.browser.chromium)
            .env("HUBWRIGHT_BROWSER_ARTIFACTS", &artifacts_dir)
            .env("HUBWRIGHT_BROWSER_TEST", &self.name)
            .env(
                "HUBWRIGHT_BROWSER_DEADLINE_MS",
                own_deadline.as_millis().to_string(),
            )
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // A group of its own, killed with its descendants' (TreeKill).
            .process_group(0)
            .kill_on_drop(true);
        eprintln!(
            "browser: running {file} (artifacts on failure: {})",
            artifacts_dir.display()
        );
        let mut child = command.spawn().unwrap_or_else(|err| {
            panic!(
                "starting {} {file} in {}: {err}",
                self.browser.node.display(),
                project.display()
            )
        });
        let tree = child.id().map(TreeKill);
        let output = Arc::new(Mutex::new(Vec::new()));
        let readers = [
            child
                .stdout
                .take()
                .map(|out| stream(out, &self.name, &output)),
            child
                .stderr
                .take()
                .map(|err| stream(err, &self.name, &output)),
        ];
        let status = match tokio::time::timeout(self.deadline, child.wait()).await {
            Ok(Ok(status)) => Some(status),
            Ok(Err(err)) => panic!("waiting for {file}: {err}"),
            Err(_) => None,
        };
        // Before the child is reaped, while its descendants still name it
        // as their parent.
        drop(tree);
        let _ = child.kill().await;
        for reader in readers.into_iter().flatten() {
            let _ = tokio::time::timeout(DRAIN_WITHIN, reader).await;
        }
        let mut output = output.lock().map(|lines| lines.clone()).unwrap_or_default();
        if status.is_none() {
            output.push(format!(
                "(killed: {file} did not exit within {:?})",
                self.deadline
            ));
        }
        Outcome {
            script: file,
            status,
            output,
            artifacts: list_files(&artifacts_dir),
            artifacts_dir,
        }
    }
}

/// Prints each line as it comes (nextest shows it with the test's output)
/// and keeps it for the report.
fn stream(
    from: impl AsyncRead + Unpin + Send + 'static,
    script: &str,
    into: &Arc<Mutex<Vec<String>>>,
) -> tokio::task::JoinHandle<()> {
    let script = script.to_owned();
    let into = Arc::clone(into);
    tokio::spawn(async move {
        let mut lines = BufReader::new(from).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            eprintln!("[{script}] {line}");
            if let Ok(mut kept) = into.lock() {
                kept.push(line);
            }
        }
    })
}

/// Kills a script and everything it started when dropped: chromium and its
/// helpers must not outlive a script that exited, failed or hung.
#[derive(Debug)]
struct TreeKill(u32);

impl Drop for TreeKill {
    fn drop(&mut self) {
        super::reap::kill_tree(self.0);
    }
}

/// `console::harness::a_test` → `console.harness.a_test`.
fn file_name(label: &str) -> String {
    label
        .replace("::", ".")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect()
}

fn list_files(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                .filter(|path| path.is_file())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}
