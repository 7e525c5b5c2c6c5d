//! The policy in force, swapped whole when its file is reloaded. A file that
//! does not load leaves the policy in force alone and is remembered as the
//! last reload's error.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Policy, PolicyError};
use crate::rereads::Rereads;
use crate::workflow::Catalog;

/// The policy in force and where it came from; shared by every request.
#[derive(Debug, Default)]
pub struct PolicyHolder {
    path: Option<PathBuf>,
    current: RwLock<Arc<Policy>>,
    status: Mutex<Status>,
}

#[derive(Debug, Default)]
struct Status {
    public: ReloadStatus,
    rereads: Rereads,
}

/// Where the policy came from and how its last reload went.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ReloadStatus {
    /// The policy file; `null`: none configured (no limits, every template open).
    pub source: Option<String>,
    /// SHA-256 of the file in force.
    pub digest: Option<String>,
    /// When the policy in force was loaded.
    pub loaded_at: Option<DateTime<Utc>>,
    /// When a changed file was last read, whether or not it loaded.
    pub last_reload_at: Option<DateTime<Utc>>,
    /// Why the file on disk is not in force (`file: place: rule`); `null`
    /// when the last reload succeeded.
    pub last_reload_error: Option<String>,
}

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reload {
    /// No file is configured.
    NoFile,
    /// The file has not changed since it was last read.
    Unchanged,
    /// The file's policy is now in force.
    Applied,
    /// The file does not load; the policy in force stays.
    Failed(PolicyError),
    /// The file does not load, seen first by a poll: the next poll reports
    /// it if it is still the same.
    Settling,
}

impl PolicyHolder {
    /// No file: no limits, every template open.
    pub fn empty() -> Self {
        Self::default()
    }

    /// A policy given in code (tests).
    pub fn fixed(policy: Policy) -> Self {
        Self {
            current: RwLock::new(Arc::new(policy)),
            ..Self::default()
        }
    }

    /// Loads `path`, checked against `catalog`; start-up fails on an error.
    pub fn load(path: &Path, catalog: &Catalog, now: DateTime<Utc>) -> Result<Self, PolicyError> {
        let holder = Self {
            path: Some(path.to_owned()),
            status: Mutex::new(Status {
                public: ReloadStatus {
                    source: Some(path.display().to_string()),
                    ..ReloadStatus::default()
                },
                rereads: Rereads::default(),
            }),
            ..Self::default()
        };
        match holder.reload(catalog, now, true) {
            Reload::Failed(err) => Err(err),
            _ => Ok(holder),
        }
    }

    /// The policy in force.
    pub fn current(&self) -> Arc<Policy> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The policy file, if one is configured.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Where the policy came from and how its last reload went.
    pub fn status(&self) -> ReloadStatus {
        self.lock_status().public.clone()
    }

    fn lock_status(&self) -> std::sync::MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads the file again and puts its policy in force if it loads.
    /// Without `force`, a file unchanged since it was last read is skipped
    /// (the poll), and a file that does not load is reported only when the
    /// next poll finds it the same ([`Reload::Settling`]); with it, it is
    /// read, checked and reported at once (SIGHUP).
    pub fn reload(&self, catalog: &Catalog, now: DateTime<Utc>, force: bool) -> Reload {
        let Some(path) = &self.path else {
            return Reload::NoFile;
        };
        let read = std::fs::read(path);
        let fingerprint = match &read {
            Ok(bytes) => crate::digest::sha256_hex(bytes),
            Err(err) => format!("unreadable: {err}"),
        };
        if self.lock_status().rereads.unchanged(&fingerprint, force) {
            return Reload::Unchanged;
        }
        let loaded = match read {
            Ok(bytes) => String::from_utf8(bytes)
                .map_err(|_| PolicyError {
                    file: path.display().to_string(),
                    place: "(file)".to_owned(),
                    rule: "is not UTF-8 text".to_owned(),
                })
                .and_then(|text| {
                    Policy::parse(&text, catalog).map_err(|(place, rule)| PolicyError {
                        file: path.display().to_string(),
                        place,
                        rule,
                    })
                }),
            Err(err) => Err(PolicyError {
                file: path.display().to_string(),
                place: "(file)".to_owned(),
                rule: format!("cannot read it: {err}"),
            }),
        };
        let mut status = self.lock_status();
        if !status.rereads.act(&fingerprint, loaded.is_ok(), force) {
            return Reload::Settling;
        }
        status.public.last_reload_at = Some(now);
        match loaded {
            Ok(policy) => {
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(policy);
                status.public.digest = Some(fingerprint);
                status.public.loaded_at = Some(now);
                status.public.last_reload_error = None;
                Reload::Applied
            }
            Err(err) => {
                status.public.last_reload_error = Some(err.to_string());
                Reload::Failed(err)
            }
        }
    }
}
