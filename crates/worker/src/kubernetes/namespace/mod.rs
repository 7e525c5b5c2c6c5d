//! `namespace` and `namespace-delete`: the environment's namespace with its
//! guard rails (quota, container limits, default-deny ingress), and its removal.
//!
//! Every write is a server-side apply by field manager `hubwright`, so applying
//! again changes nothing. A namespace hubwright did not create for this very
//! environment is never adopted, changed or deleted.
//!
//! - `create`: the `namespace` step (create-if-absent, then apply).
//! - `guard_rails`: the objects it applies inside the namespace.
//! - `delete`: the `namespace-delete` step (delete, then wait until gone).
//! - `expiry_labels`: the workers' loop carrying extensions to the labels.
//! - `target`: one environment's namespace on its cluster, shared by both.

mod create;
mod delete;
mod expiry_labels;
mod guard_rails;
mod target;

use std::time::Duration;

pub use create::{ContainerLimits, NamespaceParams, NamespaceStep};
pub use delete::{NamespaceDeleteParams, NamespaceDeleteStep};
pub use expiry_labels::{ExpiryLabels, Relabelled};

/// The label every object hubwright manages carries.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "hubwright");
/// The label naming the environment an object belongs to.
pub const ENVIRONMENT_LABEL: &str = "hubwright.io/environment";

/// How often a namespace that is going away is looked at again.
const TERMINATING_POLL: Duration = Duration::from_secs(2);
