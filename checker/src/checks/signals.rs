//! The seam-signals check: for each fault in the history, which seam signal moved past its
//! threshold first and how long after the fault started. Informational: valid unless the data
//! to tell is missing (unknown).

use serde::{Deserialize, Serialize};

use super::Params;
use crate::analysis::seams::{self, BudgetParams, Signal, SignalParams};
use crate::analysis::{self, FaultWindow};
use crate::check::{Check, Verdict};
use crate::report::table::{opt_num, Table};
use crate::rundir::RunData;
use crate::verdict::{CheckId, Validity};

/// When one signal moved during one fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Moved {
    /// Signal key, e.g. `consumer_lag`.
    pub signal: String,
    /// Seconds after the fault started; resolution is the scrape interval (1 s).
    pub after_s: f64,
    /// The value past the threshold.
    pub value: f64,
    /// The threshold.
    pub threshold: f64,
}

/// What the signals did during one fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultSignals {
    /// Fault id.
    pub id: String,
    /// Fault kind.
    pub fault: String,
    /// Target.
    pub target: String,
    /// Start, seconds since the run started.
    pub start_s: f64,
    /// Heal, if healed.
    pub end_s: Option<f64>,
    /// The signal that moved first, if any.
    pub first: Option<Moved>,
    /// Every signal that moved, earliest first.
    pub moved: Vec<Moved>,
    /// Seconds of metric samples inside the window (0 means the scrapes saw nothing).
    pub sampled_seconds: usize,
}

/// Attributes signal movements to one fault window: from the second the fault started until
/// `grace_s` after its heal.
pub fn attribute(w: &FaultWindow, signals: &[Signal], p: &SignalParams) -> FaultSignals {
    let start_s = w.start_ns as f64 / 1e9;
    let end_s = w.end_ns.map(|e| e as f64 / 1e9);
    let seconds = signals.first().map_or(0, |s| s.values.len());
    let from = start_s.floor() as usize;
    let until = end_s.map_or(seconds, |e| e.ceil() as usize + p.grace_s);
    let mut moved: Vec<Moved> = signals
        .iter()
        .filter_map(|s| {
            let at = s.first_crossing(from, until)?;
            Some(Moved {
                signal: s.key.to_owned(),
                // The sample of second `at` was taken by its end.
                after_s: ((at + 1) as f64 - start_s).max(0.0),
                value: s.values[at].unwrap_or(0.0),
                threshold: s.threshold.unwrap_or(0.0),
            })
        })
        .collect();
    moved.sort_by(|a, b| a.after_s.total_cmp(&b.after_s));
    let sampled_seconds = (from..until.min(seconds))
        .filter(|&sec| signals.iter().any(|s| s.values[sec].is_some()))
        .count();
    FaultSignals {
        id: w.id.clone(),
        fault: w.fault.clone(),
        target: w.target.clone(),
        start_s,
        end_s,
        first: moved.first().cloned(),
        moved,
        sampled_seconds,
    }
}

/// The signals of a run, or `None` without `metrics.csv`.
pub fn run_signals(run: &RunData, p: &SignalParams, budget: &BudgetParams) -> Option<Vec<Signal>> {
    let windows = analysis::fault_windows(&run.history);
    let first_fault_s = windows
        .iter()
        .map(|w| (w.start_ns / 1_000_000_000) as usize)
        .min();
    run.metrics
        .as_ref()
        .map(|m| seams::signals(m, p, budget, first_fault_s))
}

/// One signal's threshold, as the check chose it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    /// Signal key.
    pub signal: String,
    /// Human name.
    pub title: String,
    /// Unit.
    pub unit: String,
    /// Whether metrics.csv had it.
    pub present: bool,
    /// Its value before the first fault.
    pub baseline: Option<f64>,
    /// Past this it moved.
    pub threshold: Option<f64>,
    /// How the threshold was chosen.
    pub rule: String,
}

/// What the check found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Details {
    /// The thresholds' parameters.
    pub params: SignalParams,
    /// Every signal's threshold.
    #[serde(default)]
    pub signals: Vec<Threshold>,
    /// Per fault that started.
    pub faults: Vec<FaultSignals>,
    /// Faults whose start failed, with why.
    #[serde(default)]
    pub not_started: Vec<String>,
}

/// The check.
pub struct Signals;

impl Check for Signals {
    const ID: CheckId = CheckId::Signals;
    type Details = Details;

    fn run(run: &RunData, p: &Params) -> Verdict<Details> {
        check(run, &p.signals, &p.budget)
    }

    fn tables(d: &Details) -> Vec<Table> {
        vec![Table::of(
            "Signals and thresholds",
            &["signal", "unit", "data", "baseline", "threshold", "rule"],
            &d.signals,
            0,
            |t| {
                vec![
                    t.title.clone(),
                    t.unit.clone(),
                    t.present.to_string(),
                    opt_num(t.baseline),
                    opt_num(t.threshold),
                    t.rule.clone(),
                ]
            },
        )]
    }
}

/// Runs the check.
pub fn check(run: &RunData, p: &SignalParams, budget: &BudgetParams) -> Verdict<Details> {
    let windows = analysis::fault_windows(&run.history);
    let result = |validity, summary: String, details| Verdict::new(validity, summary, details);
    let empty = |not_started: Vec<String>| Details {
        params: *p,
        signals: Vec::new(),
        faults: Vec::new(),
        not_started,
    };
    if windows.is_empty() {
        return result(
            Validity::Valid,
            "no faults were injected: nothing to attribute".into(),
            empty(Vec::new()),
        );
    }
    let Some(signals) = run_signals(run, p, budget) else {
        return result(
            Validity::Unknown,
            format!(
                "metrics.csv is missing: cannot tell which signal caught {} faults",
                windows.len()
            ),
            empty(Vec::new()),
        );
    };
    // A fault whose start failed injected nothing: it is named, not attributed.
    let not_started: Vec<String> = windows
        .iter()
        .filter_map(|w| {
            Some(format!(
                "{} {}: {}",
                w.id,
                w.label(),
                w.start_error.as_ref()?
            ))
        })
        .collect();
    let windows: Vec<&FaultWindow> = windows.iter().filter(|w| w.start_error.is_none()).collect();
    if windows.is_empty() {
        return result(
            Validity::Unknown,
            format!(
                "none of the {} planned faults started ({}): the run tested nothing under faults",
                not_started.len(),
                not_started.join("; ")
            ),
            empty(not_started),
        );
    }
    let faults: Vec<FaultSignals> = windows.iter().map(|w| attribute(w, &signals, p)).collect();
    let thresholds: Vec<Threshold> = signals
        .iter()
        .map(|s| Threshold {
            signal: s.key.to_owned(),
            title: s.title.to_owned(),
            unit: s.unit.to_owned(),
            present: s.present(),
            baseline: s.baseline,
            threshold: s.threshold,
            rule: s.rule.clone(),
        })
        .collect();
    let blind: Vec<&FaultSignals> = faults.iter().filter(|f| f.sampled_seconds == 0).collect();
    let caught = faults.iter().filter(|f| f.first.is_some()).count();
    let firsts: Vec<String> = faults
        .iter()
        .map(|f| match &f.first {
            Some(m) => format!("{} {} after {:.1} s", f.id, m.signal, m.after_s),
            None => format!("{} none", f.id),
        })
        .take(5)
        .collect();
    let blind_first = blind.first().map(|f| f.id.clone());
    let (blind_n, faults_n) = (blind.len(), faults.len());
    let skipped = if not_started.is_empty() {
        String::new()
    } else {
        format!(
            "; {} did not start ({})",
            not_started.len(),
            not_started.join("; ")
        )
    };
    let details = Details {
        params: *p,
        signals: thresholds,
        faults,
        not_started,
    };
    if let Some(first) = blind_first {
        return result(
            Validity::Unknown,
            format!(
                "no metric samples during {blind_n} of {faults_n} faults (first: {first}): cannot tell what moved"
            ),
            details,
        );
    }
    result(
        Validity::Valid,
        format!(
            "{caught} of {faults_n} faults moved a seam signal; first to move: {}{}{skipped}",
            firsts.join(", "),
            if faults_n > 5 { ", ..." } else { "" }
        ),
        details,
    )
}
