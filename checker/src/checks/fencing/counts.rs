//! The replicas' own count of refused writes (`fencing_rejected_writes_total{domain}` in
//! `metrics.csv`) against the refusals their logs show: one refused write is one line and one
//! count (contract §4). A counter that dropped is a restarted replica: its new value counts
//! whole. The harness takes a last scrape after quiesce, so the last sample holds every refusal.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::scan::Refused;
use crate::metrics::Metrics;

/// The counter the store exports.
pub const COUNTER: &str = "fencing_rejected_writes_total";

/// One replica and domain whose log and counter disagree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CountMismatch {
    /// The replica.
    pub node: String,
    /// The domain.
    pub domain: String,
    /// Refusals in its log.
    pub logged: u64,
    /// Refusals its counter counted.
    pub counted: u64,
}

/// How the logs compared with the counters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    /// Whether `metrics.csv` had the counter at all (older runs do not).
    pub compared: bool,
    /// Refusals per `node/domain` the counters show.
    pub counted: BTreeMap<String, u64>,
    /// Where they disagree with the logs.
    pub mismatches: Vec<CountMismatch>,
}

/// Everything a counter counted: its first sample plus every increase, a drop being a restart
/// whose new value counts whole.
fn total(points: &[(f64, f64)]) -> f64 {
    let Some(&(_, first)) = points.first() else {
        return 0.0;
    };
    points.windows(2).fold(first, |acc, w| {
        let (v0, v1) = (w[0].1, w[1].1);
        acc + if v1 >= v0 { v1 - v0 } else { v1 }
    })
}

/// Compares the counters of `metrics` with the refusals of the logs.
pub fn compare(metrics: Option<&Metrics>, refused: &[Refused]) -> Counts {
    let Some(m) = metrics.filter(|m| m.has(COUNTER)) else {
        return Counts::default();
    };
    let mut counted: BTreeMap<(String, String), u64> = BTreeMap::new();
    for s in m.named(COUNTER).filter(|s| s.role == "store") {
        let n = total(&s.points).round().max(0.0) as u64;
        *counted
            .entry((s.node.clone(), s.label("domain").to_owned()))
            .or_default() += n;
    }
    let mut logged: BTreeMap<(String, String), u64> = BTreeMap::new();
    for r in refused {
        *logged
            .entry((r.node.clone(), r.domain.clone()))
            .or_default() += 1;
    }
    let keys: std::collections::BTreeSet<&(String, String)> =
        counted.keys().chain(logged.keys()).collect();
    let mismatches = keys
        .into_iter()
        .filter_map(|k| {
            let (c, l) = (
                counted.get(k).copied().unwrap_or(0),
                logged.get(k).copied().unwrap_or(0),
            );
            (c != l).then(|| CountMismatch {
                node: k.0.clone(),
                domain: k.1.clone(),
                logged: l,
                counted: c,
            })
        })
        .collect();
    Counts {
        compared: true,
        counted: counted
            .into_iter()
            .map(|((n, d), c)| (format!("{n}/{d}"), c))
            .collect(),
        mismatches,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves a counter's total counts its first sample, every increase, and a restart's new
    /// value whole.
    #[test]
    fn totals_survive_restarts() {
        assert_eq!(total(&[]), 0.0);
        assert_eq!(total(&[(1.0, 2.0), (2.0, 2.0), (3.0, 5.0)]), 5.0);
        assert_eq!(total(&[(1.0, 4.0), (2.0, 1.0), (3.0, 3.0)]), 7.0);
    }
}
