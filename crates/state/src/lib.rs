//! hubwright-state: the domain types, the workflow definitions and every query.
//!
//! This crate is the only one that talks to Postgres. The run/step state machine
//! lives here as single guarded SQL statements (see `docs/state_machine.md`); the
//! worker and the API call these functions and never write SQL of their own.

pub mod approval;
pub mod clock;
pub mod clusters;
mod condition;
mod digest;
mod error;
pub mod model;
pub mod policy;
pub mod pools;
mod rereads;
pub mod secrets;
pub mod store;
pub mod subjects;
pub mod workflow;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{Error, Result};
pub use store::Store;
