//! The retry-load check, from `metrics.csv` and the history.
//!
//! Per downstream and budget window: logical requests (`requests_total`), retries
//! (`retry_attempts_total`), attempts per logical request, the share of retries and the retries
//! the budget refused (`retry_budget_exhausted_total`). A caller whose retries in a window exceed
//! `ratio * requests + floor * window` makes the run invalid (the pipeline's budget slides over
//! the last 10 s, so the requests of the previous window count too, and the floor gets one more
//! second for the scrape's grain: see [`seams::CallerWindow`]): the property is "retries stayed
//! bounded", so a run whose pipeline had its budget switched off (`spec.json`
//! `no_retry_budget: true`) is held to it too — that is how the switch proves this check can
//! fail; the summary then says the budget was off. After each heal it measures how long
//! throughput (ok `place-order` completions per second) took to get back to its pre-fault
//! baseline. In a retry storm it also measures amplification at payment against the budget's
//! bound, and payment's goodput recovery ([`storm`]); amplification over the bound is invalid
//! too.

mod recovery;
pub mod storm;

pub use recovery::{last_invoke_s, recovery, recovery_of, Recovery, RecoveryParams};

use serde::{Deserialize, Serialize};

use super::Params;
use crate::analysis;
use crate::analysis::seams::{self, BudgetParams, CallerWindow};
use crate::check::{Check, Verdict};
use crate::report::table::{num, opt_num, Table};
use crate::rundir::RunData;
use crate::verdict::{CheckId, Validity};

/// How many over-budget windows are listed in full.
pub const MAX_LISTED: usize = 500;

/// One window's counts towards one downstream, summed over callers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DownstreamWindow {
    /// The service called.
    pub downstream: String,
    /// Window start, seconds since the run started.
    pub start_s: usize,
    /// Window end (exclusive).
    pub end_s: usize,
    /// Logical requests.
    pub requests: f64,
    /// Retries.
    pub retries: f64,
    /// Retries the budget refused.
    pub refused: f64,
    /// (requests + retries) / requests.
    pub attempts_per_request: Option<f64>,
    /// retries / requests.
    pub retry_share: Option<f64>,
    /// What the budget allowed.
    pub allowed_retries: f64,
}

/// The whole run's counts towards one downstream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DownstreamTotal {
    /// The service called.
    pub downstream: String,
    /// Callers (node and role) that call it.
    pub callers: usize,
    /// Logical requests.
    pub requests: f64,
    /// Retries.
    pub retries: f64,
    /// Retries the budget refused.
    pub refused: f64,
    /// (requests + retries) / requests.
    pub attempts_per_request: Option<f64>,
    /// retries / requests.
    pub retry_share: Option<f64>,
}

/// The parameters the check used.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct UsedParams {
    /// The budget.
    pub budget: BudgetParams,
    /// Recovery.
    pub recovery: RecoveryParams,
}

/// What the check measured and found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Details {
    /// The parameters it used.
    pub params: UsedParams,
    /// Whether the pipeline's retry budget was on (`spec.json`).
    pub budget_on: bool,
    /// ok operations per second before the faults.
    pub baseline_ok_per_s: Option<f64>,
    /// Recovery after each heal.
    pub recovery: Vec<Recovery>,
    /// Totals per downstream (empty without metrics).
    #[serde(default)]
    pub per_downstream: Vec<DownstreamTotal>,
    /// Per window and downstream.
    #[serde(default)]
    pub windows: Vec<DownstreamWindow>,
    /// Caller windows over the budget, at most [`MAX_LISTED`].
    #[serde(default)]
    pub over_budget: Vec<CallerWindow>,
    /// All caller windows over the budget.
    #[serde(default)]
    pub over_budget_total: usize,
    /// Each storm window at payment (empty without a storm).
    #[serde(default)]
    pub amplification: Vec<storm::Amplification>,
    /// Payment's goodput and its recovery (`None` without the series).
    #[serde(default)]
    pub goodput: Option<storm::Goodput>,
    /// Payment logs that could not be read.
    #[serde(default)]
    pub log_errors: Vec<String>,
}

/// The check.
pub struct RetryLoad;

impl Check for RetryLoad {
    const ID: CheckId = CheckId::RetryLoad;
    type Details = Details;

    fn run(run: &RunData, p: &Params) -> Verdict<Details> {
        check(run, &p.budget, &p.recovery)
    }

    fn tables(d: &Details) -> Vec<Table> {
        let over_cols = [
            "node",
            "role",
            "downstream",
            "from (s)",
            "to (s)",
            "requests",
            "requests the budget rests on",
            "retries",
            "allowed retries",
            "refused",
        ];
        let mut out = storm_tables(d);
        out.extend([
            Table::of(
                "Caller windows over the retry budget",
                &over_cols,
                &d.over_budget,
                0,
                |w| {
                    vec![
                        w.node.clone(),
                        w.role.clone(),
                        w.downstream.clone(),
                        w.start_s.to_string(),
                        w.end_s.to_string(),
                        num(w.requests),
                        num(w.budget_requests),
                        num(w.retries),
                        num(w.allowed_retries),
                        num(w.refused),
                    ]
                },
            ),
            Table::of(
                "Totals per downstream",
                &[
                    "downstream",
                    "callers",
                    "requests",
                    "retries",
                    "attempts per request",
                    "retry share",
                    "refused by budget",
                ],
                &d.per_downstream,
                0,
                |t| {
                    vec![
                        t.downstream.clone(),
                        t.callers.to_string(),
                        num(t.requests),
                        num(t.retries),
                        opt_num(t.attempts_per_request),
                        opt_num(t.retry_share),
                        num(t.refused),
                    ]
                },
            ),
            Table::of(
                "Recovery after each heal",
                &[
                    "fault",
                    "what",
                    "healed at (s)",
                    "throughput back after (s)",
                ],
                &d.recovery,
                0,
                |r| {
                    vec![
                        r.id.clone(),
                        r.fault.clone(),
                        num(r.healed_s),
                        opt_num(r.recovery_s),
                    ]
                },
            ),
            Table::of(
                "Per window and downstream",
                &[
                    "downstream",
                    "from (s)",
                    "to (s)",
                    "requests",
                    "retries",
                    "attempts per request",
                    "retry share",
                    "allowed retries",
                    "refused",
                ],
                &d.windows,
                0,
                |w| {
                    vec![
                        w.downstream.clone(),
                        w.start_s.to_string(),
                        w.end_s.to_string(),
                        num(w.requests),
                        num(w.retries),
                        opt_num(w.attempts_per_request),
                        opt_num(w.retry_share),
                        num(w.allowed_retries),
                        num(w.refused),
                    ]
                },
            ),
        ]);
        out
    }
}

/// The storm's tables: amplification per storm window, payment's goodput recovery.
fn storm_tables(d: &Details) -> Vec<Table> {
    if d.amplification.is_empty() {
        return Vec::new();
    }
    let mut out = vec![Table::of(
        "Amplification at payment per storm window",
        &[
            "fault",
            "from (s)",
            "to (s)",
            "arrivals",
            "distinct keys",
            "amplification",
            "callers",
            "their requests",
            "allowed retries",
            "budget's bound",
        ],
        &d.amplification,
        0,
        |a| {
            vec![
                a.id.clone(),
                num(a.from_s),
                num(a.to_s),
                a.arrivals.to_string(),
                a.keys.to_string(),
                opt_num(a.amplification),
                a.callers.to_string(),
                num(a.requests),
                num(a.allowed_retries),
                opt_num(a.bound),
            ]
        },
    )];
    if let Some(g) = &d.goodput {
        out.push(Table::of(
            "Payment goodput (charges answered 2xx per second) after each heal",
            &[
                "fault",
                "healed at (s)",
                "baseline (/s)",
                "back after (s)",
                "metastable",
            ],
            &g.recovery,
            0,
            |r| {
                vec![
                    r.id.clone(),
                    num(r.healed_s),
                    opt_num(g.baseline_per_s),
                    opt_num(r.recovery_s),
                    if r.recovery_s.is_none() && g.metastable {
                        "yes: still degraded when the workload ended".into()
                    } else {
                        "no".into()
                    },
                ]
            },
        ));
    }
    out
}

fn by_downstream(windows: &[CallerWindow]) -> Vec<DownstreamWindow> {
    let mut out: Vec<DownstreamWindow> = Vec::new();
    for w in windows {
        let slot = match out
            .iter()
            .position(|d| d.downstream == w.downstream && d.start_s == w.start_s)
        {
            Some(i) => &mut out[i],
            None => {
                out.push(DownstreamWindow {
                    downstream: w.downstream.clone(),
                    start_s: w.start_s,
                    end_s: w.end_s,
                    requests: 0.0,
                    retries: 0.0,
                    refused: 0.0,
                    attempts_per_request: None,
                    retry_share: None,
                    allowed_retries: 0.0,
                });
                out.last_mut().expect("just pushed")
            }
        };
        slot.requests += w.requests;
        slot.retries += w.retries;
        slot.refused += w.refused;
        slot.allowed_retries += w.allowed_retries;
    }
    for d in &mut out {
        if d.requests > 0.0 {
            d.attempts_per_request = Some((d.requests + d.retries) / d.requests);
            d.retry_share = Some(d.retries / d.requests);
        }
    }
    out.sort_by(|a, b| {
        a.downstream
            .cmp(&b.downstream)
            .then(a.start_s.cmp(&b.start_s))
    });
    out
}

/// "; amplification at payment 4.2x (bound 1.9x); goodput back 2.0 s after the heal" for the
/// storm windows, empty without them.
fn storm_summary(d: &Details) -> String {
    let mut out = String::new();
    for a in &d.amplification {
        let num = |v: Option<f64>| v.map_or("unknown".to_owned(), |x| format!("{x:.2}x"));
        out.push_str(&format!(
            "; amplification at payment {} ({} arrivals / {} keys, budget bound {})",
            num(a.amplification),
            a.arrivals,
            a.keys,
            num(a.bound)
        ));
    }
    if d.amplification.is_empty() {
        return out;
    }
    let pct = d.params.recovery.recovered_fraction * 100.0;
    if let Some(g) = &d.goodput {
        for r in &g.recovery {
            match r.recovery_s {
                Some(s) => out.push_str(&format!(
                    "; payment goodput back to {pct:.0}% of baseline {s:.1} s after the heal"
                )),
                None => out.push_str(&format!(
                    "; payment goodput not back to {pct:.0}% before the workload ended{}",
                    if g.metastable { " (metastable)" } else { "" }
                )),
            }
        }
    }
    out
}

/// Runs the check.
pub fn check(run: &RunData, budget: &BudgetParams, rp: &RecoveryParams) -> Verdict<Details> {
    let budget_on = !run.spec.config.switches.no_retry_budget;
    let windows = analysis::fault_windows(&run.history);
    let (baseline, recoveries) = recovery(&run.history, &windows, rp);
    let mut details = Details {
        params: UsedParams {
            budget: *budget,
            recovery: *rp,
        },
        budget_on,
        baseline_ok_per_s: baseline,
        recovery: recoveries,
        per_downstream: Vec::new(),
        windows: Vec::new(),
        over_budget: Vec::new(),
        over_budget_total: 0,
        amplification: Vec::new(),
        goodput: None,
        log_errors: Vec::new(),
    };
    let (amplification, log_errors) = storm::amplification(run, &windows, budget);
    details.amplification = amplification;
    details.log_errors = log_errors;
    details.goodput = storm::goodput(run, &windows, rp);
    let Some(m) = &run.metrics else {
        return Verdict::new(
            Validity::Unknown,
            "metrics.csv is missing: retry load cannot be measured",
            details,
        );
    };
    if !m.has(seams::names::REQUESTS) {
        return Verdict::new(
            Validity::Unknown,
            format!(
                "metrics.csv has no {} series: retry load cannot be measured",
                seams::names::REQUESTS
            ),
            details,
        );
    }
    let caller_windows = seams::caller_windows(m, budget);
    let over: Vec<&CallerWindow> = caller_windows
        .iter()
        .filter(|w| w.retries > w.allowed_retries + 1e-9)
        .collect();
    let loads = seams::retry_load(m);
    details.per_downstream = loads
        .iter()
        .map(|l| {
            let req: f64 = l.first_attempts.iter().sum();
            let ret: f64 = l.retries.iter().sum();
            DownstreamTotal {
                downstream: l.downstream.clone(),
                callers: l.callers,
                requests: req,
                retries: ret,
                refused: l.refused.iter().sum(),
                attempts_per_request: (req > 0.0).then(|| (req + ret) / req),
                retry_share: (req > 0.0).then(|| ret / req),
            }
        })
        .collect();
    details.windows = by_downstream(&caller_windows);
    let worst_share = details
        .windows
        .iter()
        .filter_map(|d| d.retry_share)
        .fold(0.0f64, f64::max);
    details.over_budget = over.iter().take(MAX_LISTED).map(|w| (*w).clone()).collect();
    details.over_budget_total = over.len();
    let storm_note = storm_summary(&details);
    let over_bound: Vec<&storm::Amplification> = details
        .amplification
        .iter()
        .filter(|a| a.over_bound())
        .collect();
    let (validity, summary) = if let Some(w) = over.first() {
        (
            Validity::Invalid,
            format!(
                "{} caller windows over the retry budget{} (first: {}/{} -> {} in {}-{} s: {} retries, {:.1} allowed for {} requests in it and the window before){storm_note}",
                over.len(),
                if budget_on { "" } else { " (the pipeline's budget was switched off)" },
                w.node, w.role, w.downstream, w.start_s, w.end_s,
                w.retries, w.allowed_retries, w.budget_requests
            ),
        )
    } else if let Some(a) = over_bound.first() {
        (
            Validity::Invalid,
            format!(
                "amplification at payment over the budget's bound in {} storm windows (first: {}){storm_note}",
                over_bound.len(),
                a.id
            ),
        )
    } else {
        let off = if budget_on {
            "within the retry budget"
        } else {
            "within the retry budget although the pipeline's budget was switched off"
        };
        (
            Validity::Valid,
            format!(
                "{off}; worst window retry share {:.1}% over {} downstreams{storm_note}",
                worst_share * 100.0,
                loads.len()
            ),
        )
    };
    Verdict::new(validity, summary, details)
}
