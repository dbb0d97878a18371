//! # harness
//!
//! The `harness` CLI: starts a cluster of the pipeline, drives a workload, injects faults
//! through the nemesis, records a history, checks it with the checker, and writes a report.
//! It treats the pipeline as a black box: HTTP, signals and files only; it never links `sut`.

pub mod cli;
pub mod cluster;
pub mod collect;
pub mod duration;
pub mod heal;
pub mod history;
pub mod run;
pub mod rundir;
pub mod serve;
pub mod workload;

/// Exit code for bad arguments (Jepsen's convention).
pub const EXIT_BAD_ARGS: i32 = 254;
/// Exit code for a crash of the harness itself.
pub const EXIT_CRASH: i32 = 255;
