//! The performance summary: latency quantiles and throughput per phase (before, during and after
//! faults) and per function, and availability (share of ok). Informational: valid when
//! operations were measured, unknown when the history has no completed client operation.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Params;
use crate::analysis::{self, Outcome, Phase};
use crate::check::{Check, Verdict};
use crate::report::table::{opt_num, Table};
use crate::rundir::{History, RunData};
use crate::verdict::{CheckId, Validity};

/// One row: a phase and a function (or `all`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseStats {
    /// Phase.
    pub phase: Phase,
    /// Operation function, or `all`.
    pub f: String,
    /// Invocations in the phase (by invoke time).
    pub ops: u64,
    /// How they ended.
    pub ok: u64,
    /// Definitely failed.
    pub fail: u64,
    /// Indeterminate.
    pub info: u64,
    /// No completion in the history.
    pub open: u64,
    /// ok / ops.
    pub availability: Option<f64>,
    /// ok completions per second of the phase.
    pub ok_per_s: Option<f64>,
    /// Latency quantiles of ok operations, milliseconds.
    pub latency_ms: Option<Quantiles>,
}

/// Latency quantiles in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Quantiles {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest.
    pub max: f64,
}

/// Nearest-rank quantiles of sorted nanosecond latencies.
pub fn quantiles(sorted_ns: &[u64]) -> Option<Quantiles> {
    let last = sorted_ns.len().checked_sub(1)?;
    let at = |q: f64| {
        let i = ((q * sorted_ns.len() as f64).ceil() as usize).saturating_sub(1);
        sorted_ns[i.min(last)] as f64 / 1e6
    };
    Some(Quantiles {
        p50: at(0.5),
        p90: at(0.9),
        p99: at(0.99),
        p999: at(0.999),
        max: sorted_ns[last] as f64 / 1e6,
    })
}

#[derive(Default)]
struct Acc {
    counts: [u64; 4],
    latencies_ns: Vec<u64>,
}

/// Statistics per phase and function, phases in time order, `all` first within each.
pub fn phase_stats(history: &History) -> Vec<PhaseStats> {
    let windows = analysis::fault_windows(history);
    let durations = analysis::phase_durations_ns(&windows, analysis::end_ns(history));
    let mut acc: BTreeMap<(Phase, &str), Acc> = BTreeMap::new();
    for pair in analysis::pairs(history) {
        let phase = analysis::phase_of(pair.invoke.time_ns, &windows);
        let outcome = pair.outcome();
        for f in ["all", pair.invoke.f.as_str()] {
            let a = acc.entry((phase, f)).or_default();
            a.counts[outcome as usize] += 1;
            if outcome == Outcome::Ok {
                a.latencies_ns.extend(pair.latency_ns());
            }
        }
    }
    let mut out: Vec<PhaseStats> = acc
        .into_iter()
        .map(|((phase, f), mut a)| {
            a.latencies_ns.sort_unstable();
            let ops: u64 = a.counts.iter().sum();
            let secs = durations[phase as usize] as f64 / 1e9;
            PhaseStats {
                phase,
                f: f.to_owned(),
                ops,
                ok: a.counts[Outcome::Ok as usize],
                fail: a.counts[Outcome::Fail as usize],
                info: a.counts[Outcome::Info as usize],
                open: a.counts[Outcome::Open as usize],
                availability: (ops > 0).then(|| a.counts[0] as f64 / ops as f64),
                ok_per_s: (secs > 0.0).then(|| a.counts[0] as f64 / secs),
                latency_ms: quantiles(&a.latencies_ns),
            }
        })
        .collect();
    out.sort_by(|a, b| (a.phase, a.f != "all", &a.f).cmp(&(b.phase, b.f != "all", &b.f)));
    out
}

/// Seconds of each phase.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PhaseSeconds {
    /// Before the first fault.
    #[serde(rename = "before-faults")]
    pub before_faults: f64,
    /// Inside fault windows.
    #[serde(rename = "during-faults")]
    pub during_faults: f64,
    /// After the first fault, outside windows.
    #[serde(rename = "after-faults")]
    pub after_faults: f64,
}

/// What the check measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Details {
    /// Seconds of each phase.
    pub phase_seconds: PhaseSeconds,
    /// Share of ok operations invoked during faults.
    pub availability_during_faults: Option<f64>,
    /// Per phase and function.
    pub phases: Vec<PhaseStats>,
}

/// The check.
pub struct Perf;

impl Check for Perf {
    const ID: CheckId = CheckId::Perf;
    type Details = Details;

    fn run(run: &RunData, _: &Params) -> Verdict<Details> {
        check(&run.history)
    }

    fn tables(d: &Details) -> Vec<Table> {
        let q =
            |s: &PhaseStats, pick: fn(&Quantiles) -> f64| opt_num(s.latency_ms.as_ref().map(pick));
        vec![Table::of(
            "Per phase and operation (latency of ok operations, ms)",
            &[
                "phase",
                "f",
                "ops",
                "ok",
                "fail",
                "info",
                "open",
                "availability",
                "ok/s",
                "p50",
                "p90",
                "p99",
                "p99.9",
                "max",
            ],
            &d.phases,
            0,
            |s| {
                vec![
                    s.phase.key().to_owned(),
                    s.f.clone(),
                    s.ops.to_string(),
                    s.ok.to_string(),
                    s.fail.to_string(),
                    s.info.to_string(),
                    s.open.to_string(),
                    opt_num(s.availability),
                    opt_num(s.ok_per_s),
                    q(s, |q| q.p50),
                    q(s, |q| q.p90),
                    q(s, |q| q.p99),
                    q(s, |q| q.p999),
                    q(s, |q| q.max),
                ]
            },
        )]
    }
}

/// Runs the check.
pub fn check(history: &History) -> Verdict<Details> {
    let stats = phase_stats(history);
    let all = |p: Phase| stats.iter().find(|s| s.phase == p && s.f == "all");
    let measured = stats
        .iter()
        .any(|s| s.f == "all" && s.ok + s.fail + s.info > 0);
    let describe = |p: Phase| {
        all(p).map(|s| {
            format!(
                "{}: {:.0}% ok, {:.1} ok/s, p99 {}",
                p.as_str(),
                s.availability.unwrap_or(0.0) * 100.0,
                s.ok_per_s.unwrap_or(0.0),
                s.latency_ms
                    .map_or("n/a".to_owned(), |q| format!("{:.1} ms", q.p99))
            )
        })
    };
    let (validity, summary) = if measured {
        let parts: Vec<String> = Phase::ALL.iter().filter_map(|p| describe(*p)).collect();
        (Validity::Valid, parts.join("; "))
    } else {
        (
            Validity::Unknown,
            "no client operation completed: nothing to measure".into(),
        )
    };
    let windows = analysis::fault_windows(history);
    let durations = analysis::phase_durations_ns(&windows, analysis::end_ns(history));
    Verdict::new(
        validity,
        summary,
        Details {
            phase_seconds: PhaseSeconds {
                before_faults: durations[0] as f64 / 1e9,
                during_faults: durations[1] as f64 / 1e9,
                after_faults: durations[2] as f64 / 1e9,
            },
            availability_during_faults: all(Phase::DuringFaults).and_then(|s| s.availability),
            phases: stats.clone(),
        },
    )
}
