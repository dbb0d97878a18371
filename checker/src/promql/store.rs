//! Series as Prometheus's TSDB would hold them for the evaluator: label sets (with
//! `__name__`), samples in milliseconds and staleness markers.
//!
//! From `metrics.csv` ([`Store::from_metrics`]) every (node, role) is one scrape target, labelled
//! like the harness's scrape config labels it: `node`, `role`, `instance="<node>/<role>"`,
//! `job="pipeline"`. The CSV holds no row for a scrape that failed, so the scrape rounds are the
//! distinct `t_s` values of the file: a target without rows in a round was down then (`up` 0,
//! and its series go stale as Prometheus marks them), and a series missing from a round its
//! target answered went stale too.

use std::collections::{BTreeMap, BTreeSet};

use crate::metrics::Metrics;

/// A label set, `__name__` included.
pub type Labels = BTreeMap<String, String>;

/// The job label of the pipeline's scrape targets.
pub const JOB: &str = "pipeline";

/// One sample; `None` is a staleness marker.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Milliseconds (Unix, or since a test's start).
    pub t_ms: i64,
    /// The value, or `None` for a staleness marker.
    pub v: Option<f64>,
    /// When an evaluation may first read it: a scraped sample is stamped with its scrape's
    /// start but stored only once the scrape ended. At least `t_ms`.
    pub seen_ms: i64,
}

impl Point {
    /// A sample readable from its own timestamp on.
    pub fn at(t_ms: i64, v: Option<f64>) -> Point {
        Point {
            t_ms,
            v,
            seen_ms: t_ms,
        }
    }
}

/// One series.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSeries {
    /// Its labels.
    pub labels: Labels,
    /// Samples in time order.
    pub points: Vec<Point>,
}

/// Every series the evaluator can select.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Store {
    /// The series.
    pub series: Vec<StoredSeries>,
    /// Positions in `series` by metric name (built by [`Store::new`]; empty: scan them all).
    by_name: BTreeMap<String, Vec<usize>>,
}

/// The labels of a scrape target, as the harness's Prometheus config sets them.
pub fn target_labels(node: &str, role: &str) -> Labels {
    Labels::from([
        ("node".to_owned(), node.to_owned()),
        ("role".to_owned(), role.to_owned()),
        ("instance".to_owned(), format!("{node}/{role}")),
        ("job".to_owned(), JOB.to_owned()),
    ])
}

impl Store {
    /// A store of `series`, indexed by metric name.
    pub fn new(series: Vec<StoredSeries>) -> Store {
        let mut by_name: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, s) in series.iter().enumerate() {
            if let Some(n) = s.labels.get("__name__") {
                by_name.entry(n.clone()).or_default().push(i);
            }
        }
        Store { series, by_name }
    }

    /// The series named `name` (every series when `None`).
    pub fn named<'a>(
        &'a self,
        name: Option<&'a str>,
    ) -> Box<dyn Iterator<Item = &'a StoredSeries> + 'a> {
        match name {
            Some(n) if !self.by_name.is_empty() => Box::new(
                self.by_name
                    .get(n)
                    .into_iter()
                    .flatten()
                    .map(|&i| &self.series[i]),
            ),
            _ => Box::new(self.series.iter()),
        }
    }

    /// The series of `metrics.csv`, on the Unix clock of a run that started at
    /// `started_unix_ms` (`t_s` is seconds since then), with a synthetic `up` per target.
    pub fn from_metrics(m: &Metrics, started_unix_ms: i64) -> Store {
        let at = |t_s: f64| started_unix_ms + (t_s * 1000.0).round() as i64;
        let rounds: BTreeSet<i64> = m
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| at(p.0)))
            .collect();
        let mut answered: BTreeMap<(String, String), BTreeSet<i64>> = BTreeMap::new();
        for s in &m.series {
            let slot = answered
                .entry((s.node.clone(), s.role.clone()))
                .or_default();
            slot.extend(s.points.iter().map(|p| at(p.0)));
        }
        let mut all = Vec::new();
        for s in &m.series {
            let mut labels = target_labels(&s.node, &s.role);
            labels.extend(s.labels.clone());
            labels.insert("__name__".into(), s.metric.clone());
            let own: BTreeMap<i64, f64> = s.points.iter().map(|p| (at(p.0), p.1)).collect();
            let first = own.keys().next().copied().unwrap_or(i64::MAX);
            let mut points = Vec::with_capacity(own.len());
            let mut live = false;
            for &r in rounds.range(first..) {
                match own.get(&r) {
                    Some(&v) => {
                        points.push(Point::at(r, Some(v)));
                        live = true;
                    }
                    None if live => {
                        points.push(Point::at(r, None));
                        live = false;
                    }
                    None => {}
                }
            }
            all.push(StoredSeries { labels, points });
        }
        for ((node, role), seen) in answered {
            let mut labels = target_labels(&node, &role);
            labels.insert("__name__".into(), "up".into());
            let first = seen.iter().next().copied().unwrap_or(i64::MAX);
            let points = rounds
                .range(first..)
                .map(|r| Point::at(*r, Some(if seen.contains(r) { 1.0 } else { 0.0 })))
                .collect();
            all.push(StoredSeries { labels, points });
        }
        Store::new(all)
    }

    /// The first and last sample times, if any.
    pub fn span_ms(&self) -> Option<(i64, i64)> {
        let ts = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.t_ms));
        let (mut lo, mut hi) = (i64::MAX, i64::MIN);
        for t in ts {
            lo = lo.min(t);
            hi = hi.max(t);
        }
        (lo <= hi).then_some((lo, hi))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Series;
    use crate::promql::eval::{eval, Value};
    use crate::promql::parse::parse;

    /// Proves a target without rows in a scrape round is `up` 0 then and its series are stale
    /// (an instant selector sees nothing) until it answers again, while another target's series
    /// stay; times are the run's start plus `t_s`.
    #[test]
    fn missed_rounds_are_down_and_stale() {
        let series = |node: &str, points: Vec<(f64, f64)>| Series {
            node: node.into(),
            role: "order".into(),
            metric: "consumer_lag_records".into(),
            labels: Default::default(),
            points,
        };
        let m = Metrics {
            series: vec![
                series("n1", vec![(1.0, 5.0), (2.0, 6.0), (3.0, 7.0)]),
                series("n2", vec![(1.0, 1.0), (3.0, 3.0)]),
            ],
            rows: 5,
            end_s: 3.0,
        };
        let store = Store::from_metrics(&m, 1_000_000);
        let at = |q: &str, t_s: f64| -> Vec<(String, f64)> {
            let Value::Vector(v) = eval(
                &store,
                &parse(q).expect("parses"),
                1_000_000 + (t_s * 1000.0) as i64,
            )
            .expect("evaluates") else {
                panic!("a vector")
            };
            v.into_iter()
                .map(|s| (s.labels["node"].clone(), s.value))
                .collect()
        };
        assert_eq!(at("up", 2.0), vec![("n1".into(), 1.0), ("n2".into(), 0.0)]);
        assert_eq!(at("consumer_lag_records", 2.5), vec![("n1".into(), 6.0)]);
        assert_eq!(
            at("consumer_lag_records", 3.0),
            vec![("n1".into(), 7.0), ("n2".into(), 3.0)]
        );
        assert_eq!(
            at("up{instance=\"n2/order\",job=\"pipeline\"}", 3.0),
            vec![("n2".into(), 1.0)]
        );
    }
}
