//! Named contexts, as kubectl has them: which hubwright API to talk to and
//! where its token comes from, kept in a YAML file so nobody types a token
//! twice.
//!
//! The file is `$HUBWRIGHT_CONFIG`, else `$XDG_CONFIG_HOME/hubwright/config.yaml`,
//! else `~/.config/hubwright/config.yaml`. It is written with mode 0600. A
//! context holds its token in the file or a command that prints it (a password
//! manager, `gcloud auth print-identity-token`); no command prints a token.
//!
//! Precedence, highest first: `--server`/`--token` (or `HUBWRIGHT_URL`,
//! `HUBWRIGHT_TOKEN`), then the context named by `--context`
//! (`HUBWRIGHT_CONTEXT`), then the file's current context, then
//! `http://127.0.0.1:8080` with no token.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

/// Where an API command goes when nothing else says.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

/// The config file's contents.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ConfigFile {
    /// The context API commands use when none is named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_context: Option<String>,
    /// The contexts by name.
    #[serde(default)]
    pub contexts: BTreeMap<String, Context>,
}

/// One API and how to authenticate to it.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Context {
    /// The API's URL.
    pub server: String,
    /// The token itself (the file is private to its owner).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// A shell command whose standard output is the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_command: Option<String>,
}

impl Context {
    /// Where the token comes from, for listings: never the token.
    pub fn token_source(&self) -> &'static str {
        match (&self.token, &self.token_command) {
            (_, Some(_)) => "command",
            (Some(_), None) => "file",
            (None, None) => "none",
        }
    }
}

/// The config file's path.
pub fn path() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("HUBWRIGHT_CONFIG") {
        return Ok(PathBuf::from(path));
    }
    let base = match std::env::var_os("XDG_CONFIG_HOME") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => match std::env::var_os("HOME") {
            Some(home) => PathBuf::from(home).join(".config"),
            None => bail!("set HUBWRIGHT_CONFIG or HOME: there is nowhere to keep contexts"),
        },
    };
    Ok(base.join("hubwright").join("config.yaml"))
}

impl ConfigFile {
    /// Reads `path`; a missing file is an empty config.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => serde_yaml_ng::from_str(&text)
                .with_context(|| format!("{}: not a hubwright config file", path.display())),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(err) => Err(err).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Writes `path` readable by its owner only, replacing it in one rename so
    /// a reader never sees half a file.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let text = serde_yaml_ng::to_string(self).context("cannot write the config")?;
        let temporary = path.with_extension("yaml.tmp");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)
            .with_context(|| format!("cannot write {}", temporary.display()))?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .with_context(|| format!("cannot write {}", temporary.display()))?;
        std::fs::rename(&temporary, path)
            .with_context(|| format!("cannot replace {}", path.display()))
    }

    /// The file as `config view` shows it: tokens replaced by `REDACTED`.
    pub fn redacted(&self) -> Self {
        let mut copy = self.clone();
        for context in copy.contexts.values_mut() {
            if context.token.is_some() {
                context.token = Some("REDACTED".to_owned());
            }
        }
        copy
    }
}

/// The server and token an API command uses.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    /// The API's URL.
    pub server: String,
    /// The bearer token, when there is one.
    pub token: Option<String>,
    /// The context it came from, for messages.
    pub context: Option<String>,
}

/// Resolves the endpoint from the flags (or their variables) and the file.
pub fn resolve(
    file: &ConfigFile,
    context: Option<&str>,
    server: Option<&str>,
    token: Option<&str>,
) -> anyhow::Result<Endpoint> {
    let name = context.or(file.current_context.as_deref());
    let chosen = match name {
        Some(name) => Some(file.contexts.get(name).with_context(|| {
            let known: Vec<&str> = file.contexts.keys().map(String::as_str).collect();
            format!(
                "--context: no context named `{name}` (known: {}); add it with `hubwright config set-context {name} --server URL`",
                if known.is_empty() { "none".to_owned() } else { known.join(", ") }
            )
        })?),
        None => None,
    };
    let server = server
        .map(str::to_owned)
        .or_else(|| chosen.map(|c| c.server.clone()))
        .unwrap_or_else(|| DEFAULT_SERVER.to_owned());
    let token = match (token, chosen) {
        (Some(token), _) => Some(token.to_owned()),
        (None, Some(context)) => context_token(name.unwrap_or_default(), context)?,
        (None, None) => None,
    };
    Ok(Endpoint {
        server,
        token,
        context: name.map(str::to_owned),
    })
}

/// A context's token: from its command when it has one, else from the file.
fn context_token(name: &str, context: &Context) -> anyhow::Result<Option<String>> {
    let Some(command) = &context.token_command else {
        return Ok(context.token.clone());
    };
    let output = std::process::Command::new("sh")
        .args(["-c", command])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("context `{name}`: cannot run its token-command"))?;
    if !output.status.success() {
        bail!(
            "context `{name}`: its token-command `{command}` failed ({})",
            output.status
        );
    }
    let token = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if token.is_empty() {
        bail!("context `{name}`: its token-command `{command}` printed nothing");
    }
    Ok(Some(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> ConfigFile {
        let mut contexts = BTreeMap::new();
        contexts.insert(
            "prod".to_owned(),
            Context {
                server: "https://hw.example.org".to_owned(),
                token: Some("hw_file".to_owned()),
                token_command: None,
            },
        );
        contexts.insert(
            "lab".to_owned(),
            Context {
                server: "http://lab:8080".to_owned(),
                token: None,
                token_command: Some("echo hw_from_command".to_owned()),
            },
        );
        ConfigFile {
            current_context: Some("prod".to_owned()),
            contexts,
        }
    }

    #[test]
    fn flags_win_over_the_named_context_which_wins_over_the_current_one() -> anyhow::Result<()> {
        let file = file();
        let current = resolve(&file, None, None, None)?;
        assert_eq!(
            (current.server.as_str(), current.token.as_deref()),
            ("https://hw.example.org", Some("hw_file"))
        );
        let named = resolve(&file, Some("lab"), None, None)?;
        assert_eq!(
            (named.server.as_str(), named.token.as_deref()),
            ("http://lab:8080", Some("hw_from_command"))
        );
        let flags = resolve(&file, Some("lab"), Some("http://other"), Some("hw_flag"))?;
        assert_eq!(
            (flags.server.as_str(), flags.token.as_deref()),
            ("http://other", Some("hw_flag"))
        );
        let nothing = resolve(&ConfigFile::default(), None, None, None)?;
        assert_eq!(
            (nothing.server.as_str(), nothing.token),
            (DEFAULT_SERVER, None)
        );
        Ok(())
    }

    #[test]
    fn an_unknown_context_names_the_known_ones_and_how_to_add_it() {
        let message = resolve(&file(), Some("staging"), None, None)
            .map(|_| ())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            message.contains("no context named `staging` (known: lab, prod)"),
            "{message}"
        );
        assert!(
            message.contains("hubwright config set-context staging"),
            "{message}"
        );
    }

    #[test]
    fn a_failing_token_command_is_an_error_naming_the_context() {
        let context = Context {
            server: "http://x".to_owned(),
            token: None,
            token_command: Some("exit 3".to_owned()),
        };
        let message = context_token("broken", &context)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            message.starts_with("context `broken`: its token-command `exit 3` failed"),
            "{message}"
        );
    }

    #[test]
    fn the_view_never_shows_a_token() {
        let shown = serde_yaml_ng::to_string(&file().redacted()).unwrap_or_default();
        assert!(!shown.contains("hw_file"), "{shown}");
        assert!(shown.contains("token: REDACTED"), "{shown}");
        assert!(
            shown.contains("token-command: echo hw_from_command"),
            "{shown}"
        );
    }
}
