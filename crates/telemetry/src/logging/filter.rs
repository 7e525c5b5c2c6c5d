//! The log filter, changeable without a restart. It starts as `RUST_LOG`
//! says; `serve --log-filter-file` names a file whose directives replace it
//! at start-up, and again on SIGHUP and whenever a poll finds the file
//! changed ([`watch_file`]). An empty file puts `RUST_LOG`'s filter back; a
//! file that does not parse leaves the filter in force and says why.
//!
//! A file rather than an API call: it is what a ConfigMap mounts, so every
//! replica follows one change, and who may change it is who may deploy.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use tracing_subscriber::{EnvFilter, Registry, reload};

/// The filter when `RUST_LOG` is unset or does not parse.
pub const DEFAULT: &str = "info,sqlx=warn";

/// The installed filter's handle and what it started as.
struct Control {
    handle: reload::Handle<EnvFilter, Registry>,
    started_with: String,
}

static CONTROL: OnceLock<Control> = OnceLock::new();

/// The filter `RUST_LOG` asks for (or [`DEFAULT`]), as a reloadable layer.
pub(crate) fn from_env() -> (
    reload::Layer<EnvFilter, Registry>,
    reload::Handle<EnvFilter, Registry>,
    String,
) {
    let wanted = std::env::var(EnvFilter::DEFAULT_ENV).unwrap_or_default();
    let (filter, directives) = match EnvFilter::try_new(&wanted) {
        Ok(filter) if !wanted.trim().is_empty() => (filter, wanted),
        _ => (EnvFilter::new(DEFAULT), DEFAULT.to_owned()),
    };
    let (layer, handle) = reload::Layer::new(filter);
    (layer, handle, directives)
}

/// Keeps `handle` for [`set`], once the subscriber holding it is installed.
pub(super) fn install(handle: reload::Handle<EnvFilter, Registry>, started_with: String) {
    let _ = CONTROL.set(Control {
        handle,
        started_with,
    });
}

/// Whether this process's filter can change: [`super::init`] installed it.
pub fn is_reloadable() -> bool {
    CONTROL.get().is_some()
}

/// Replaces the filter with `directives` (`RUST_LOG` syntax); empty puts
/// back the one the process started with. Returns the filter now in force;
/// the error says what does not parse.
pub fn set(directives: &str) -> Result<String, String> {
    let control = CONTROL
        .get()
        .ok_or("this process's logging was not set up by hubwright; its filter cannot change")?;
    let directives = if directives.is_empty() {
        control.started_with.as_str()
    } else {
        directives
    };
    let filter = EnvFilter::try_new(directives).map_err(|err| format!("{directives:?}: {err}"))?;
    control
        .handle
        .reload(filter)
        .map_err(|err| format!("the subscriber is gone: {err}"))?;
    Ok(directives.to_owned())
}

/// The directives in a filter file: its lines without `#` comments and
/// blanks, joined with commas.
pub fn parse_file(text: &str) -> String {
    text.lines()
        .map(|line| line.split('#').next().unwrap_or_default().trim())
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(",")
}

/// Reads `path` and applies it ([`set`]): the file's directives, and the
/// filter now in force. The error names the file and what is wrong with it.
pub fn apply_file(path: &Path) -> Result<(String, String), String> {
    let text = std::fs::read_to_string(path)
        .map_err(|err| format!("cannot read {}: {err}", path.display()))?;
    let directives = parse_file(&text);
    let in_force = set(&directives).map_err(|err| format!("{}: {err}", path.display()))?;
    Ok((directives, in_force))
}

/// Applies `path` on SIGHUP and, with `poll`, whenever its content changes,
/// until `shutdown` resolves. `applied` is what is in force now.
pub async fn watch_file(
    path: PathBuf,
    mut applied: String,
    poll: Option<Duration>,
    shutdown: impl Future<Output = ()>,
) {
    use crate::reread::{hangups, hung_up, polled, polls};
    let mut hangup = hangups("the log filter file");
    let mut ticks = polls(poll);
    // What the last look found wrong, so a poll says it once, not every time.
    let mut failing: Option<String> = None;
    tokio::pin!(shutdown);
    loop {
        let forced = tokio::select! {
            () = &mut shutdown => return,
            Some(()) = hung_up(&mut hangup) => true,
            () = polled(&mut ticks) => false,
        };
        let read = tokio::fs::read_to_string(&path)
            .await
            .map(|text| parse_file(&text))
            .map_err(|err| format!("cannot read {}: {err}", path.display()));
        let outcome = match read {
            Ok(directives) if directives == applied && !forced => Ok(None),
            Ok(directives) => set(&directives)
                .map(|in_force| Some((directives, in_force)))
                .map_err(|err| format!("{}: {err}", path.display())),
            Err(err) => Err(err),
        };
        match outcome {
            Ok(None) => failing = None,
            Ok(Some((directives, in_force))) => {
                failing = None;
                applied = directives;
                tracing::info!(path = %path.display(), filter = %in_force, "log filter changed");
            }
            Err(err) if forced || failing.as_ref() != Some(&err) => {
                tracing::warn!(error = %err, "the log filter file does not apply; the filter in force stays");
                failing = Some(err);
            }
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_file_is_its_directives_without_comments_or_blank_lines() {
        let text = "# quieter database\ninfo\n\n  sqlx=warn   # the pool\nhubwright_worker=debug\n";
        assert_eq!(parse_file(text), "info,sqlx=warn,hubwright_worker=debug");
        assert_eq!(parse_file("# nothing\n\n"), "");
    }
}
