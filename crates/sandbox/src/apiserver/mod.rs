#![doc = include_str!("README.md")]
pub mod apply;
pub mod body;
mod cleanup;
mod cluster;
pub mod controllers;
pub mod discovery;
pub mod faults;
pub mod fields;
mod lifecycle;
pub mod normalize;
pub mod openapi;
mod openapi_v2;
mod options;
pub mod patch;
mod paths;
mod portforward;
pub mod protobuf;
pub mod resources;
mod routes;
pub mod selector;
mod server;
pub mod status;
pub mod store;
mod tls;
pub mod validate;
mod watch;
pub mod watch_options;
pub mod write;

pub use cluster::TestCluster;
pub use faults::{Fault, FaultAction, RequestRecord, Verb};
pub use options::{
    DEFAULT_TERMINATION_DELAY, Options, QUICK_TERMINATION_DELAY, TERMINATION_DELAY_VAR,
};
pub use server::{CONTEXT, ClientError, KubeApiServer};
