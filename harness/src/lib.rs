//! # harness
//!
//! The `harness` CLI: starts a cluster of the pipeline, drives a workload, injects faults
//! through the nemesis, records a history, checks it with the checker, and writes a report.
//! It treats the pipeline as a black box: HTTP, signals and files only; it never links `sut`.

pub mod bench;
pub mod cli;
pub mod cluster;
pub mod cluster_cmd;
pub mod collect;
pub mod config;
pub mod faults;
pub mod heal;
pub mod history;
pub mod metrics;
pub mod nodes_file;
pub mod progress;
pub mod prometheus;
pub mod remote;
pub mod run;
pub mod rundir;
pub mod scenario;
pub mod seam_table;
pub mod serve;
pub mod spec;
pub mod ssh_config;
pub mod suite;
pub mod workload;

/// Exit code for bad arguments (Jepsen's convention).
pub const EXIT_BAD_ARGS: i32 = 254;
/// Exit code for a crash of the harness itself.
pub const EXIT_CRASH: i32 = 255;

/// An input mistake (a flag, a nodes file) found after argument parsing: exits 254 with its
/// one-line message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);
