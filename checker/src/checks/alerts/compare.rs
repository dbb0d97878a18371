//! The checker's firings against Prometheus's, as time rather than as span pairs.
//!
//! The two evaluate the same rules over samples taken at different instants (the harness's
//! scraper and Prometheus's), so an edge moves by up to one evaluation plus one scrape
//! interval, and an alert near its threshold may flap on one side and hold on the other. Pairing
//! spans in order turns one such flap into a disagreement of every later span. Instead, per
//! label set, each side's firing time is the union of its spans (an evaluation that fired holds
//! until the next one), clipped to the window both evaluated in; every stretch where exactly
//! one side fired is a disagreement, and a stretch longer than the tolerance makes the two
//! disagree. A span only one side has disagrees as soon as it outlasts the tolerance.

use std::collections::BTreeMap;

use formats::alerts::PrometheusRun;
use serde::{Deserialize, Serialize};

use crate::promql::rules::Firing;

/// One label set's firing time, compared between the checker and Prometheus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// `alertname`.
    pub alert: String,
    /// Labels, `k=v` joined.
    pub labels: String,
    /// The checker's spans, `[from, to]` seconds since the run started.
    pub ours: Vec<(f64, f64)>,
    /// Prometheus's spans.
    pub prometheus: Vec<(f64, f64)>,
    /// The longest stretch inside the window where exactly one of them fired, seconds.
    pub longest_disagreement_s: f64,
    /// `longest_disagreement_s` within the tolerance.
    pub agree: bool,
}

/// Milliseconds, half-open `[from, to)`.
type Interval = (i64, i64);

/// How the two are compared.
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    /// The window both evaluated in, Unix milliseconds.
    pub window: Interval,
    /// The longest disagreement that still agrees.
    pub tolerance_ms: i64,
    /// How long one evaluation that fired holds.
    pub step_ms: i64,
    /// The run's start, for the seconds shown.
    pub start_ms: i64,
}

/// Compares every label set either side fired.
pub fn compare(ours: &[Firing], prom: &PrometheusRun, frame: Frame) -> Vec<Comparison> {
    assert!(frame.tolerance_ms >= 0 && frame.step_ms > 0, "{frame:?}");
    type Sides = (Vec<Interval>, Vec<Interval>);
    let mut by_labels: BTreeMap<BTreeMap<String, String>, Sides> = BTreeMap::new();
    for f in ours {
        let e = by_labels.entry(f.labels.clone()).or_default();
        e.0.push((f.from_ms, f.to_ms.saturating_add(frame.step_ms)));
    }
    for f in &prom.alerts {
        let e = by_labels.entry(f.labels.clone()).or_default();
        e.1.push((f.from_unix_ms, f.to_unix_ms.saturating_add(frame.step_ms)));
    }
    let secs = |spans: &[Interval]| -> Vec<(f64, f64)> {
        let rel = |ms: i64| (ms - frame.start_ms) as f64 / 1000.0;
        spans
            .iter()
            .map(|s| (rel(s.0), rel(s.1 - frame.step_ms)))
            .collect()
    };
    let mut out = Vec::new();
    for (labels, (a, b)) in by_labels {
        let (ua, ub) = (
            clipped_union(&a, frame.window),
            clipped_union(&b, frame.window),
        );
        if ua.is_empty() && ub.is_empty() {
            continue; // fired outside the window both evaluated in only
        }
        let longest = longest_xor(&ua, &ub);
        out.push(Comparison {
            alert: labels.get("alertname").cloned().unwrap_or_default(),
            labels: super::joined(&labels),
            ours: secs(&a),
            prometheus: secs(&b),
            longest_disagreement_s: longest as f64 / 1000.0,
            agree: longest <= frame.tolerance_ms,
        });
    }
    out
}

/// Per label set, the comparison with the shortest disagreement among `candidates` (the same
/// rules evaluated over the same samples under different assumptions). A candidate that does
/// not list a label set fired nothing for it in the window; when Prometheus did not either,
/// that candidate agrees fully and the label set is left out.
pub fn closest(candidates: Vec<Vec<Comparison>>) -> Vec<Comparison> {
    assert!(!candidates.is_empty(), "at least one evaluation to compare");
    let keys: std::collections::BTreeSet<(String, String)> = candidates
        .iter()
        .flatten()
        .map(|c| (c.alert.clone(), c.labels.clone()))
        .collect();
    keys.into_iter()
        .filter_map(|(alert, labels)| {
            let found: Vec<Option<&Comparison>> = candidates
                .iter()
                .map(|v| v.iter().find(|c| c.alert == alert && c.labels == labels))
                .collect();
            let prom_fired = found.iter().flatten().any(|c| !c.prometheus.is_empty());
            if found.iter().any(Option::is_none) && !prom_fired {
                return None;
            }
            found
                .into_iter()
                .flatten()
                .min_by(|a, b| {
                    a.longest_disagreement_s
                        .total_cmp(&b.longest_disagreement_s)
                })
                .cloned()
        })
        .collect()
}

/// The sorted, merged union of `spans`, each clipped to `window`.
fn clipped_union(spans: &[Interval], window: Interval) -> Vec<Interval> {
    let mut v: Vec<Interval> = spans
        .iter()
        .map(|&(f, t)| (f.max(window.0), t.min(window.1)))
        .filter(|(f, t)| f < t)
        .collect();
    v.sort_unstable();
    let mut out: Vec<Interval> = Vec::with_capacity(v.len());
    for s in v {
        match out.last_mut() {
            Some(last) if s.0 <= last.1 => last.1 = last.1.max(s.1),
            _ => out.push(s),
        }
    }
    out
}

/// The longest stretch covered by exactly one of two merged unions.
fn longest_xor(a: &[Interval], b: &[Interval]) -> i64 {
    let mut edges: Vec<i64> = a.iter().chain(b).flat_map(|s| [s.0, s.1]).collect();
    edges.sort_unstable();
    edges.dedup();
    let covers = |u: &[Interval], t: i64| u.iter().any(|s| s.0 <= t && t < s.1);
    let (mut longest, mut run) = (0i64, 0i64);
    for w in edges.windows(2) {
        let (from, to) = (w[0], w[1]);
        if covers(a, from) != covers(b, from) {
            run += to - from;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    longest
}

#[cfg(test)]
mod tests {
    use super::*;

    fn firing(from_ms: i64, to_ms: i64) -> Firing {
        Firing {
            labels: BTreeMap::from([("alertname".into(), "A".into())]),
            from_ms,
            to_ms,
            open: false,
        }
    }

    fn prom(spans: &[(i64, i64)]) -> PrometheusRun {
        let mut p = PrometheusRun::skipped("test");
        p.ran = true;
        p.alerts = spans
            .iter()
            .map(|&(f, t)| formats::alerts::PromFiring {
                labels: BTreeMap::from([("alertname".into(), "A".into())]),
                from_unix_ms: f,
                to_unix_ms: t,
            })
            .collect();
        p
    }

    const FRAME: Frame = Frame {
        window: (0, 100_000),
        tolerance_ms: 2_000,
        step_ms: 1_000,
        start_ms: 0,
    };

    fn one(ours: &[Firing], p: &[(i64, i64)]) -> Comparison {
        let c = compare(ours, &prom(p), FRAME);
        assert_eq!(c.len(), 1, "{c:?}");
        c.into_iter().next().unwrap()
    }

    /// Proves edges a second or two apart agree, and a span only one side has, or a start
    /// three seconds apart, disagrees.
    #[test]
    fn edges_within_the_tolerance_agree_and_beyond_disagree() {
        assert!(one(&[firing(10_000, 20_000)], &[(11_000, 22_000)]).agree);
        let late = one(&[firing(10_000, 20_000)], &[(13_000, 20_000)]);
        assert!(
            !late.agree && late.longest_disagreement_s == 3.0,
            "{late:?}"
        );
        let only_ours = one(&[firing(10_000, 15_000)], &[]);
        assert!(!only_ours.agree, "{only_ours:?}");
        let only_prom = one(&[], &[(40_000, 50_000)]);
        assert!(!only_prom.agree, "{only_prom:?}");
    }

    /// Proves a flap that one side splits into two spans with a short gap and the other holds
    /// agrees (pairing spans in order would have failed every later one), while a long gap
    /// disagrees; a single-evaluation blip on one side agrees.
    #[test]
    fn a_short_flap_agrees_and_a_long_gap_does_not() {
        let split = [firing(10_000, 14_000), firing(16_000, 30_000)];
        let c = one(&split, &[(10_000, 30_000)]);
        assert!(c.agree, "{c:?}");
        assert_eq!(c.ours.len(), 2);
        let gap = [firing(10_000, 14_000), firing(20_000, 30_000)];
        assert!(!one(&gap, &[(10_000, 30_000)]).agree);
        assert!(one(&[firing(50_000, 50_000)], &[]).agree);
    }

    /// Proves the closest candidate wins per label set: a span only one evaluation fired
    /// (the other fired nothing, as Prometheus) is left out, and of two that both fired the
    /// one nearer Prometheus's is kept; when every candidate disagrees the disagreement stays.
    #[test]
    fn the_closest_candidate_per_label_set_is_kept() {
        let strict = compare(
            &[firing(10_000, 20_000), firing(40_000, 45_000)],
            &prom(&[(10_000, 20_000)]),
            FRAME,
        );
        let loose = compare(&[firing(10_000, 20_000)], &prom(&[(10_000, 20_000)]), FRAME);
        let c = closest(vec![strict.clone(), loose]);
        assert_eq!(c.len(), 1, "{c:?}");
        assert!(c[0].agree && c[0].longest_disagreement_s == 0.0, "{c:?}");
        assert!(
            !strict[0].agree,
            "the extra span alone disagrees: {strict:?}"
        );
        let late = compare(&[firing(14_000, 20_000)], &prom(&[(10_000, 20_000)]), FRAME);
        let later = compare(&[firing(16_000, 20_000)], &prom(&[(10_000, 20_000)]), FRAME);
        let c = closest(vec![later, late]);
        assert_eq!(c[0].longest_disagreement_s, 4.0, "{c:?}");
        assert!(!c[0].agree);
    }

    /// Proves only the window both evaluated in counts: a span Prometheus fired before the
    /// checker's first sample is not compared.
    #[test]
    fn outside_the_window_is_not_compared() {
        let f = Frame {
            window: (20_000, 100_000),
            ..FRAME
        };
        assert!(compare(&[], &prom(&[(1_000, 10_000)]), f).is_empty());
        let c = compare(&[firing(19_000, 30_000)], &prom(&[(20_000, 30_000)]), f);
        assert!(c[0].agree, "{c:?}");
    }
}
