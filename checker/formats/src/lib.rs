//! # formats
//!
//! The run directory's formats, owned by the checker that reads them and used by every tool
//! crate that writes them (`harness`, `nemesis`): the history ([`history`]), the final state
//! ([`final_state`]), `spec.json` ([`spec`]: the run as a typed [`spec::RunConfig`]),
//! `cluster.json` ([`cluster`]), what the run's Prometheus reported ([`alerts`]), the heal-ledger entry ([`ledger`]), `metrics.csv`'s row
//! ([`metrics`]), the run-directory file names ([`files`]), and the vocabulary they share:
//! roles, the fault vocabulary ([`fault`]), saga steps and effect kinds ([`effects`]),
//! validity and scenario expectations ([`expectation`]).
//!
//! It depends on nothing in the workspace. A field renamed here breaks the build of every
//! writer and reader at once, instead of a report table or a scenario at run time.
//!
//! ```
//! use formats::fault::Planned;
//! let f: Planned = "kind=pause,role=order,at=3s,for=4s".parse()?;
//! assert_eq!(f.to_string(), "kind=pause,role=order,node=leader,at=3s,for=4s");
//! # Ok::<(), String>(())
//! ```

pub mod alerts;
pub mod cluster;
pub mod duration;
pub mod effects;
pub mod expectation;
pub mod fault;
pub mod files;
pub mod final_state;
pub mod history;
pub mod ledger;
mod legacy;
pub mod metrics;
pub mod role;
pub mod spec;
mod spelled;
pub mod validity;

pub use role::Role;
pub use validity::Validity;
