//! What a retry storm did at payment: amplification while it stood, against what the retry
//! budget allows, and payment's goodput after the heal.
//!
//! **Amplification** of a storm window = requests that arrived at payment while the storm stood
//! (payment's `effect request arrived` log lines, one per request a caller delivered; requests
//! one payment node forwards to its leader are not counted twice) / the distinct idempotency
//! keys among them. Every arrival beyond a key's first is a retry of some caller (the policy's,
//! the saga's repeated step, a re-drive after a client's resend), and the pipeline's budget
//! counts all of them (docs/pipeline.md, "Retries and the budget"), so with the budget:
//!
//! `arrivals ≤ keys + Σ over callers of (ratio × requests + floor × (window + 1 s))`
//!
//! with each caller's requests counted over the budget window that ends at the heal, widened by
//! one second for the grain of the scrape and of the budget's own 1 s buckets (every send that
//! arrived in the storm lies in it while the storm and its latency fit in the window; the extra
//! floor second is the same grain on the retry side). Callers that sent payment nothing in that window are left out: they cannot have
//! brought an arrival. `bound` is that right-hand side over `keys`.
//!
//! **Goodput** at payment = logical charges answered 2xx per second, summed over callers
//! (`call_outcomes_total{downstream="payment",route="/charge",outcome="ok"}`); its recovery
//! after each heal is judged like throughput's ([`super::recovery_of`]). A run whose goodput
//! never got back before the workload ended, with at least [`METASTABLE_AFTER_S`] seconds of
//! workload after the heal, is marked metastable: it stayed degraded after the trigger was gone.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{recovery_of, Recovery, RecoveryParams};
use crate::analysis::seams::{names, BudgetParams};
use crate::analysis::FaultWindow;
use crate::logs;
use crate::metrics::{self, Metrics};
use crate::rundir::RunData;

/// The pipeline's log message for a request arriving at an effect role (contract §4).
pub const ARRIVED: &str = "effect request arrived";
/// The fault kind whose windows are measured.
pub const STORM: &str = "storm";
/// The role whose arrivals are counted.
pub const PAYMENT: &str = "payment";
/// The goodput series: calls answered 2xx per downstream and route.
pub const CALL_OUTCOMES: &str = "call_outcomes_total";
/// Seconds of workload after a heal without recovery that make a run metastable.
pub const METASTABLE_AFTER_S: f64 = 5.0;

/// One storm window at payment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Amplification {
    /// Fault id.
    pub id: String,
    /// The fault, e.g. `storm payment`.
    pub fault: String,
    /// Window start, seconds since the run started.
    pub from_s: f64,
    /// Window end (the heal), seconds since the run started.
    pub to_s: f64,
    /// Requests that arrived at payment in the window.
    pub arrivals: u64,
    /// Distinct idempotency keys among them.
    pub keys: u64,
    /// arrivals / keys.
    pub amplification: Option<f64>,
    /// Callers that sent payment anything in the budget window ending at the heal.
    pub callers: usize,
    /// Their requests (first sends of a key) in that window.
    pub requests: f64,
    /// What the budget allows them to retry in it.
    pub allowed_retries: f64,
    /// (keys + allowed_retries) / keys; `None` when the window is longer than the budget's.
    pub bound: Option<f64>,
}

impl Amplification {
    /// Over the budget's bound?
    pub fn over_bound(&self) -> bool {
        matches!((self.amplification, self.bound), (Some(a), Some(b)) if a > b + 1e-9)
    }
}

/// Payment's goodput and its recovery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Goodput {
    /// Charges answered 2xx per second, from second 0.
    pub per_s: Vec<f64>,
    /// Mean before the first fault (after the warm-up).
    pub baseline_per_s: Option<f64>,
    /// Recovery after each heal.
    pub recovery: Vec<Recovery>,
    /// The workload's last second (recovery is judged before it).
    pub workload_end_s: usize,
    /// Some heal was never followed by recovery although the workload ran on for at least
    /// [`METASTABLE_AFTER_S`] seconds after it.
    pub metastable: bool,
}

/// Arrivals at payment: `(seconds since start, key)`, and the log files that could not be read.
fn arrivals(run: &RunData) -> (Vec<(f64, String)>, Vec<String>) {
    let started = run.history.header.started_unix_ms as f64;
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (_, rel, abs) in logs::role_logs(&run.dir, PAYMENT) {
        let scanned = logs::scan(&abs, &rel, &[ARRIVED], |e| {
            let t = e.timestamp.as_deref().and_then(logs::unix_ms);
            if let (Some(ms), Some(key)) = (t, e.text("key")) {
                out.push(((ms as f64 - started) / 1000.0, key));
            }
        });
        if let Err(e) = scanned {
            errors.push(e.to_string());
        }
    }
    (out, errors)
}

/// Per caller of payment: requests and retries per second.
fn payment_callers(m: &Metrics) -> BTreeMap<(String, String), (Vec<f64>, Vec<f64>)> {
    let seconds = m.seconds();
    let mut out: BTreeMap<(String, String), (Vec<f64>, Vec<f64>)> = BTreeMap::new();
    for (name, retry) in [(names::REQUESTS, false), (names::RETRIES, true)] {
        for s in m.named(name).filter(|s| s.label("downstream") == PAYMENT) {
            let slot = out
                .entry((s.node.clone(), s.role.clone()))
                .or_insert_with(|| (vec![0.0; seconds], vec![0.0; seconds]));
            let v = if retry { &mut slot.1 } else { &mut slot.0 };
            for (o, x) in v.iter_mut().zip(metrics::counter_per_second(s, seconds)) {
                *o += x;
            }
        }
    }
    out
}

/// Amplification in every storm window; the log files that could not be read.
pub fn amplification(
    run: &RunData,
    windows: &[FaultWindow],
    budget: &BudgetParams,
) -> (Vec<Amplification>, Vec<String>) {
    let storms: Vec<&FaultWindow> = windows
        .iter()
        .filter(|w| w.fault == STORM && w.start_error.is_none())
        .collect();
    if storms.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let (arrived, errors) = arrivals(run);
    let callers = run
        .metrics
        .as_ref()
        .map(payment_callers)
        .unwrap_or_default();
    let window_s = budget.window_s.max(1);
    let out = storms
        .into_iter()
        .map(|w| {
            let from_s = w.start_ns as f64 / 1e9;
            let to_s = w.end_ns.map_or(f64::INFINITY, |e| e as f64 / 1e9);
            let inside: Vec<&String> = arrived
                .iter()
                .filter(|(t, _)| *t >= from_s && *t <= to_s)
                .map(|(_, k)| k)
                .collect();
            let keys = inside.iter().collect::<BTreeSet<_>>().len() as u64;
            let end = to_s.ceil().min(1e9) as usize;
            let start = end.saturating_sub(window_s + 2);
            let mut requests = 0.0;
            let mut active = 0;
            for (req, ret) in callers.values() {
                let sum = |v: &Vec<f64>| {
                    v.get(start..end.min(v.len()))
                        .map_or(0.0, |x| x.iter().sum::<f64>())
                };
                let (r, t) = (sum(req), sum(ret));
                if r + t > 0.0 {
                    active += 1;
                    requests += r;
                }
            }
            let allowed = budget.ratio * requests
                + budget.floor_retries_per_s * (window_s + 1) as f64 * active as f64;
            let fits = to_s - from_s <= window_s as f64;
            Amplification {
                id: w.id.clone(),
                fault: w.label(),
                from_s,
                to_s,
                arrivals: inside.len() as u64,
                keys,
                amplification: (keys > 0).then(|| inside.len() as f64 / keys as f64),
                callers: active,
                requests,
                allowed_retries: allowed,
                bound: (keys > 0 && fits).then(|| (keys as f64 + allowed) / keys as f64),
            }
        })
        .collect();
    (out, errors)
}

/// Payment's goodput and its recovery after each heal; `None` without the series.
pub fn goodput(run: &RunData, windows: &[FaultWindow], p: &RecoveryParams) -> Option<Goodput> {
    let m = run.metrics.as_ref()?;
    let series: Vec<_> = m
        .named(CALL_OUTCOMES)
        .filter(|s| {
            s.label("downstream") == PAYMENT
                && s.label("route") == "/charge"
                && s.label("outcome") == "ok"
        })
        .collect();
    if series.is_empty() {
        return None;
    }
    let per_s = metrics::counters_per_second(series, m.seconds());
    let workload_end_s = super::last_invoke_s(&run.history, per_s.len());
    let (baseline, recovery) = recovery_of(&per_s, workload_end_s, windows, p);
    let metastable = recovery.iter().any(|r| {
        r.recovery_s.is_none() && workload_end_s as f64 - r.healed_s >= METASTABLE_AFTER_S
    }) && baseline.is_some();
    Some(Goodput {
        per_s,
        baseline_per_s: baseline,
        recovery,
        workload_end_s,
        metastable,
    })
}
