//! Throughput recovery after each heal: how long ok `place-order` completions per second took
//! to get back to their pre-fault baseline.

use formats::history::F;
use serde::{Deserialize, Serialize};

use crate::analysis::{self, FaultWindow};
use crate::rundir::History;

/// How recovery after a heal is judged.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RecoveryParams {
    /// Throughput counts as recovered at this share of the baseline.
    pub recovered_fraction: f64,
    /// Seconds averaged when comparing with the baseline.
    pub smoothing_s: usize,
    /// Seconds at the start left out of the baseline.
    pub warmup_s: usize,
}

impl Default for RecoveryParams {
    fn default() -> Self {
        RecoveryParams {
            recovered_fraction: 0.9,
            smoothing_s: 3,
            warmup_s: 2,
        }
    }
}

/// Recovery after one heal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recovery {
    /// Fault id.
    pub id: String,
    /// The fault, e.g. `pause n2/order`.
    pub fault: String,
    /// When it was healed, seconds since start.
    pub healed_s: f64,
    /// Seconds from the heal until throughput was back; `None` if it never was before the
    /// workload ended.
    pub recovery_s: Option<f64>,
}

/// The last second with a client invocation (exclusive), at most `len`.
pub fn last_invoke_s(history: &History, len: usize) -> usize {
    history
        .ops
        .iter()
        .rev()
        .find(|o| !o.process.is_nemesis() && !o.op_type.is_completion())
        .map(|o| (o.time_ns / 1_000_000_000) as usize + 1)
        .unwrap_or(0)
        .min(len)
}

/// Baseline throughput and recovery after each heal.
pub fn recovery(
    history: &History,
    windows: &[FaultWindow],
    p: &RecoveryParams,
) -> (Option<f64>, Vec<Recovery>) {
    let mut t = analysis::throughput(history, Some(F::PlaceOrder));
    if t.ok.iter().all(|n| *n == 0) {
        t = analysis::throughput(history, None);
    }
    let ok: Vec<f64> = t.ok.iter().map(|n| *n as f64).collect();
    let last = last_invoke_s(history, ok.len());
    recovery_of(&ok, last, windows, p)
}

/// The baseline of the per-second series `ok` (seconds before `last_s` only) and how long it
/// took after each heal to be back at [`RecoveryParams::recovered_fraction`] of it.
pub fn recovery_of(
    ok: &[f64],
    last_s: usize,
    windows: &[FaultWindow],
    p: &RecoveryParams,
) -> (Option<f64>, Vec<Recovery>) {
    let last_s = last_s.min(ok.len());
    let first_fault_s = windows
        .iter()
        .map(|w| (w.start_ns / 1_000_000_000) as usize)
        .min()
        .unwrap_or(last_s);
    let before: Vec<f64> = ok
        .get(p.warmup_s.min(first_fault_s)..first_fault_s.min(last_s))
        .unwrap_or(&[])
        .to_vec();
    let baseline = if before.len() >= 3 {
        Some(before.iter().sum::<f64>() / before.len() as f64)
    } else {
        let mut outside: Vec<f64> = (p.warmup_s..last_s)
            .filter(|s| {
                analysis::phase_of(*s as u64 * 1_000_000_000, windows)
                    != analysis::Phase::DuringFaults
            })
            .map(|s| ok[s])
            .collect();
        outside.sort_by(f64::total_cmp);
        outside.get(outside.len() / 2).copied()
    }
    .filter(|b| *b > 0.0);
    let smoothing = p.smoothing_s.max(1);
    let out = windows
        .iter()
        .filter_map(|w| {
            let healed_s = w.end_ns? as f64 / 1e9;
            let recovery_s = baseline.and_then(|b| {
                let from = healed_s.floor() as usize;
                (from..last_s.saturating_sub(smoothing - 1))
                    .find(|&s| {
                        let avg = ok[s..s + smoothing].iter().sum::<f64>() / smoothing as f64;
                        avg >= p.recovered_fraction * b
                    })
                    .map(|s| (s as f64 - healed_s).max(0.0))
            });
            Some(Recovery {
                id: w.id.clone(),
                fault: w.label(),
                healed_s,
                recovery_s,
            })
        })
        .collect();
    (baseline, out)
}
