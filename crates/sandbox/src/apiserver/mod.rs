#![doc = include_str!("README.md")]
pub mod body;
mod cluster;
pub mod discovery;
pub mod faults;
pub mod fields;
mod lifecycle;
pub mod normalize;
pub mod openapi;
pub mod patch;
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
pub mod write;

pub use cluster::TestCluster;
pub use faults::{Fault, FaultAction, RequestRecord, Verb};
pub use server::{CONTEXT, ClientError, KubeApiServer, Options};
