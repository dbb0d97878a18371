//! The checks. Each takes parts of a run and returns a [`CheckResult`](crate::CheckResult).

pub mod effects;
pub mod history_shape;

use crate::rundir::RunData;
use crate::verdict::Results;

/// Runs every check on a loaded run and composes the verdict.
pub fn check_all(run: &RunData) -> Results {
    let checks = vec![
        history_shape::check(&run.history),
        effects::check(&run.history, &run.final_state),
    ];
    Results::new(run.history.header.run_id.clone(), checks)
}
