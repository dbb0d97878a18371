//! The checks. Each takes parts of a run and returns a [`CheckResult`](crate::CheckResult):
//!
//! | check | reads | invalid when |
//! |---|---|---|
//! | `history` | history | a process's operations do not pair up |
//! | `effects` | history, final state | an order is not in a legal end state with its effects |
//! | `idempotency` | history, final state | a key produced more than one effect record |
//! | `fencing` | `nodes/*/store.log` | a replica accepted a token below one it had accepted |
//! | `retry-load` | `metrics.csv`, history | a caller's retries exceeded the budget (also when the pipeline's budget was switched off) |
//! | `signals` | `metrics.csv`, history | never (informational; unknown without data) |
//! | `perf` | history | never (informational; unknown without data) |

pub mod effects;
pub mod fencing;
pub mod history_shape;
pub mod idempotency;
pub mod perf;
pub mod retry_load;
pub mod signals;

use serde::Serialize;

use crate::analysis::seams::{BudgetParams, SignalParams};
use crate::expectation::{self, ExpectationResult};
use crate::rundir::RunData;
use crate::verdict::{CheckResult, Results};

/// Every tunable number the checks use; each check records the ones it used in its details.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Params {
    /// The retry budget the pipeline should keep.
    pub budget: BudgetParams,
    /// Seam-signal thresholds.
    pub signals: SignalParams,
    /// Recovery after heal.
    pub recovery: retry_load::RecoveryParams,
}

/// Runs every check on a loaded run with default parameters and composes the verdict.
pub fn check_all(run: &RunData) -> Results {
    check_all_with(run, &Params::default())
}

/// Runs every check with `params`.
pub fn check_all_with(run: &RunData, params: &Params) -> Results {
    let inventory = crate::lincheck::inventory(&run.history, &run.final_state);
    check_all_parts(run, params, inventory)
}

/// Runs every check with `params`, taking the inventory linearizability result as computed by
/// the caller (who may also have rendered its HTML view).
pub fn check_all_parts(run: &RunData, params: &Params, inventory: CheckResult) -> Results {
    let checks = vec![
        history_shape::check(&run.history),
        effects::check(&run.history, &run.final_state),
        idempotency::check(&run.history, &run.final_state),
        fencing::check(run),
        retry_load::check(run, &params.budget, &params.recovery),
        signals::check(run, &params.signals, &params.budget),
        perf::check(&run.history),
        inventory,
    ];
    let mut results = Results::new(run.history.header.run_id.clone(), checks);
    results.started_unix_ms = Some(run.history.header.started_unix_ms);
    results.duration_s = Some(crate::analysis::end_ns(&run.history) as f64 / 1e9);
    results.expectation = expectation_of(run, &results);
    results
}

/// The spec's expectation evaluated against `results`; a malformed one is unknown, with the
/// reason as its claim.
fn expectation_of(run: &RunData, results: &Results) -> Option<ExpectationResult> {
    Some(match expectation::from_spec(&run.spec)? {
        Ok(e) => expectation::evaluate(&e, results),
        Err(why) => ExpectationResult {
            outcome: expectation::Outcome::Unknown,
            scenario: run
                .spec
                .get("scenario")
                .and_then(|v| v.as_str())
                .unwrap_or("-")
                .to_owned(),
            protection: "-".into(),
            protection_on: false,
            claim: why,
            requirements: Vec::new(),
        },
    })
}
