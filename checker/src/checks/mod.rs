//! The checks. Each is a [`Check`](crate::check::Check) over a loaded run:
//!
//! | check | reads | invalid when |
//! |---|---|---|
//! | `history` | history | a process's operations do not pair up |
//! | `effects` | history, final state | an order is not in a legal end state with its effects |
//! | `idempotency` | history, final state | a key produced more than one effect record |
//! | `fencing` | `nodes/*/store.log`, leader roles' logs, `metrics.csv` | a replica accepted a token below one it had accepted, or two holders led one token (unknown: a replica refused a leader for longer than a lease with no fault, or its counter disagrees with its log) |
//! | `retry-load` | `metrics.csv`, history | a caller's retries exceeded the budget (also when the pipeline's budget was switched off) |
//! | `signals` | `metrics.csv`, history | never (informational; unknown without data) |
//! | `perf` | history | never (informational; unknown without data) |
//! | `linearizability` | history, final state | the stock operations cannot be linearized |
//! | `alerts` | `alerts.yml`, `metrics.csv`, `prometheus/alerts.json` | never (informational; unknown without data or when Prometheus disagrees) |

pub mod alerts;
pub mod effects;
pub mod fencing;
pub mod history_shape;
pub mod idempotency;
pub mod perf;
pub mod retry_load;
pub mod signals;

use serde::Serialize;

pub use crate::lincheck::inventory::Linearizability;
pub use alerts::Alerts;
pub use effects::Effects;
pub use fencing::Fencing;
pub use history_shape::HistoryShape;
pub use idempotency::Idempotency;
pub use perf::Perf;
pub use retry_load::RetryLoad;
pub use signals::Signals;

use crate::analysis::seams::{BudgetParams, SignalParams};
use crate::check::{Check, Page};
use crate::expectation;
use crate::lincheck::InventoryOptions;
use crate::report::table::Table;
use crate::rundir::RunData;
use crate::verdict::{CheckId, CheckResult, Results};

/// Every tunable number the checks use; each check records the ones it used in its details,
/// and the report draws with the same ones.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Params {
    /// The retry budget the pipeline should keep.
    pub budget: BudgetParams,
    /// Seam-signal thresholds.
    pub signals: SignalParams,
    /// Recovery after heal.
    pub recovery: retry_load::RecoveryParams,
    /// Lease timing (what counts as lease noise).
    pub lease: fencing::LeaseParams,
    /// Bounds of the linearizability search.
    #[serde(skip)]
    pub linearizability: InventoryOptions,
}

impl Params {
    /// These parameters for a run on a cluster with its own timing (a nodes file's `[timing]`
    /// in `spec.json`): a run on slow VMs is judged by its own lease period, not loopback's.
    pub fn for_run(&self, spec: &formats::spec::Spec) -> Params {
        let mut p = self.clone();
        if let Some(ttl_ms) = spec.timing.lease_ttl_ms {
            let default = fencing::LeaseParams::default();
            p.lease.lease_ttl_ms = ttl_ms;
            p.lease.campaign_ms = p
                .lease
                .campaign_ms
                .max(spec.timing.store_timeout_ms.unwrap_or(default.campaign_ms));
            // A signal may follow a heal by a few lease periods (an election, a drained lag).
            let ttl_s = usize::try_from(ttl_ms.div_ceil(1000)).unwrap_or(usize::MAX);
            p.signals.grace_s = p.signals.grace_s.max(ttl_s.saturating_mul(4));
        }
        p
    }
}

/// Every check's result, in order, and the pages the checks rendered themselves.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The composed results (`results.json`).
    pub results: Results,
    /// Pages for the report to write.
    pub pages: Vec<Page>,
}

fn one<C: Check>(run: &RunData, params: &Params, pages: &mut Vec<Page>) -> CheckResult {
    let mut v = C::run(run, params);
    pages.append(&mut v.pages);
    CheckResult::of::<C>(v)
}

/// Runs every check on a loaded run and composes the verdict, the expectation's outcome
/// included.
pub fn check_all(run: &RunData, params: &Params) -> Checked {
    let params = &params.for_run(&run.spec);
    let mut pages = Vec::new();
    let checks = CheckId::ALL
        .iter()
        .map(|id| match id {
            CheckId::History => one::<HistoryShape>(run, params, &mut pages),
            CheckId::Effects => one::<Effects>(run, params, &mut pages),
            CheckId::Idempotency => one::<Idempotency>(run, params, &mut pages),
            CheckId::Fencing => one::<Fencing>(run, params, &mut pages),
            CheckId::RetryLoad => one::<RetryLoad>(run, params, &mut pages),
            CheckId::Signals => one::<Signals>(run, params, &mut pages),
            CheckId::Perf => one::<Perf>(run, params, &mut pages),
            CheckId::Linearizability => one::<Linearizability>(run, params, &mut pages),
            CheckId::Alerts => one::<Alerts>(run, params, &mut pages),
        })
        .collect();
    let mut results = Results::new(run.history.header.run_id.clone(), checks);
    results.started_unix_ms = Some(run.history.header.started_unix_ms);
    results.duration_s = Some(crate::analysis::end_ns(&run.history) as f64 / 1e9);
    results.notes.extend(run.spec_note.clone());
    results.expectation = run
        .spec
        .config
        .expectation
        .as_ref()
        .map(|e| expectation::evaluate(e, &results));
    Checked { results, pages }
}

fn tables_of<C: Check>(r: &CheckResult) -> Vec<Table> {
    match r.details_of::<C>() {
        Some(d) => C::tables(&d),
        None => vec![Table::list(
            "Details this version cannot read as this check's",
            &[r.details.to_string()],
            0,
        )],
    }
}

/// The evidence tables of one result, from its check's typed details (empty tables left out).
pub fn tables(r: &CheckResult) -> Vec<Table> {
    let all = match r.name {
        CheckId::History => tables_of::<HistoryShape>(r),
        CheckId::Effects => tables_of::<Effects>(r),
        CheckId::Idempotency => tables_of::<Idempotency>(r),
        CheckId::Fencing => tables_of::<Fencing>(r),
        CheckId::RetryLoad => tables_of::<RetryLoad>(r),
        CheckId::Signals => tables_of::<Signals>(r),
        CheckId::Perf => tables_of::<Perf>(r),
        CheckId::Linearizability => tables_of::<Linearizability>(r),
        CheckId::Alerts => tables_of::<Alerts>(r),
    };
    all.into_iter().filter(|t| !t.is_empty()).collect()
}
