//! The performance summary: latency quantiles and throughput per phase (before, during and after
//! faults) and per function, and availability (share of ok). Informational: valid when
//! operations were measured, unknown when the history has no completed client operation.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::json;

use crate::analysis::{self, Outcome, Phase};
use crate::rundir::History;
use crate::verdict::{CheckResult, Validity};

/// One row: a phase and a function (or `all`).
#[derive(Debug, Clone, PartialEq, Serialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
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

/// Runs the check.
pub fn check(history: &History) -> CheckResult {
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
    CheckResult {
        name: "perf".into(),
        validity,
        summary,
        details: json!({
            "phase_seconds": {
                "before-faults": durations[0] as f64 / 1e9,
                "during-faults": durations[1] as f64 / 1e9,
                "after-faults": durations[2] as f64 / 1e9,
            },
            "availability_during_faults": all(Phase::DuringFaults).and_then(|s| s.availability),
            "phases": stats,
        }),
    }
}
