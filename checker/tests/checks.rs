//! Checker tests over small hand-made run directories that follow docs/contracts.md: every
//! violation kind of every check is flagged in one run and absent in another, missing data gives
//! unknown, bad input gives an error naming the file, and the report renders (HTML, PNGs, CSVs,
//! the runs index, and a page headless Chromium loads). Modules live in `tests/checks/`.

#[path = "checks/chromium.rs"]
mod chromium;
#[path = "checks/effects.rs"]
mod effects;
#[path = "checks/effects_kinds.rs"]
mod effects_kinds;
#[path = "checks/effects_ledger.rs"]
mod effects_ledger;
#[path = "checks/effects_quiesce.rs"]
mod effects_quiesce;
#[path = "checks/effects_real.rs"]
mod effects_real;
#[path = "checks/effects_rejected.rs"]
mod effects_rejected;
#[path = "checks/fencing.rs"]
mod fencing;
#[path = "checks/fencing_real.rs"]
mod fencing_real;
#[path = "checks/idempotency.rs"]
mod idempotency;
/// The linearizability checker's tests (known answers, brute-force cross-checks, bounds, input).
mod lincheck;
#[path = "checks/report.rs"]
mod report;
#[path = "checks/retry_load.rs"]
mod retry_load;
/// Amplification at payment and goodput recovery in a retry storm.
#[path = "checks/retry_storm.rs"]
mod retry_storm;
#[path = "checks/signals_perf.rs"]
mod signals_perf;
#[path = "checks/support.rs"]
mod support;
