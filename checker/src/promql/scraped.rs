//! Series as the run's Prometheus stored them (`prometheus/samples.jsonl`), for the evaluator:
//! the comparison with Prometheus's own alerts then tests the evaluator alone, not two scrapers
//! that sample at different instants.
//!
//! Prometheus's API returns stored samples but not its staleness markers. They are restored
//! from each target's `up` series, which has a sample at every scrape, failed or not: a series
//! of that target with no sample at a scrape after its first one went stale then (Prometheus
//! marks every series of a failed scrape, and a series a scrape no longer returns, stale at that
//! scrape's timestamp). With [`Readable::AfterScrape`] every sample of a scrape is readable
//! only once the scrape ended: its timestamp plus that scrape's `scrape_duration_seconds`
//! ([`Point::seen_ms`]), what an evaluation that runs exactly at its instant reads; with
//! [`Readable::AtTimestamp`] from its timestamp on, what an evaluation that runs late (a busy
//! Prometheus) reads.

use std::collections::BTreeMap;

use formats::alerts::PromSeries;

use super::store::{Labels, Point, Store, StoredSeries};

/// When a scraped sample becomes readable to an evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readable {
    /// Once its scrape ended.
    AfterScrape,
    /// From its timestamp on.
    AtTimestamp,
}

/// A scrape target: its `job` and `instance` labels.
type Target = (String, String);

fn target_of(labels: &Labels) -> Option<Target> {
    Some((labels.get("job")?.clone(), labels.get("instance")?.clone()))
}

/// Per target, its scrapes: timestamp to the instant the scrape ended.
fn scrapes(series: &[PromSeries]) -> BTreeMap<Target, BTreeMap<i64, i64>> {
    let named = |name: &'static str| {
        series
            .iter()
            .filter(move |s| s.labels.get("__name__").map(String::as_str) == Some(name))
            .filter_map(|s| Some((target_of(&s.labels)?, s)))
    };
    let mut out: BTreeMap<Target, BTreeMap<i64, i64>> = BTreeMap::new();
    for (target, up) in named("up") {
        out.entry(target)
            .or_default()
            .extend(up.points.iter().map(|p| (p.0, p.0)));
    }
    for (target, took) in named("scrape_duration_seconds") {
        let Some(rounds) = out.get_mut(&target) else {
            continue;
        };
        for &(t, secs) in &took.points {
            if let Some(seen) = rounds.get_mut(&t) {
                let ms = (secs.max(0.0) * 1000.0).ceil().min(60_000.0) as i64;
                *seen = t.saturating_add(ms);
            }
        }
    }
    out
}

impl Store {
    /// The series of `prometheus/samples.jsonl`, with staleness markers and readability
    /// restored per target from `up` and `scrape_duration_seconds`. A series without a target
    /// (no `job` or `instance`, or no `up` for it) keeps its samples as they are.
    pub fn from_prometheus(series: &[PromSeries], readable: Readable) -> Store {
        let mut rounds = scrapes(series);
        if readable == Readable::AtTimestamp {
            for r in rounds.values_mut() {
                for (t, seen) in r.iter_mut() {
                    *seen = *t;
                }
            }
        }
        let mut all = Vec::with_capacity(series.len());
        for s in series {
            let own: BTreeMap<i64, f64> = s.points.iter().copied().collect();
            let target = target_of(&s.labels).and_then(|t| rounds.get(&t));
            let points = match (target, own.keys().next()) {
                (Some(r), Some(&first)) => {
                    let mut points = Vec::with_capacity(own.len());
                    let mut live = false;
                    for (&t, &seen) in r.range(first..) {
                        let v = own.get(&t).copied();
                        if v.is_some() || live {
                            points.push(Point {
                                t_ms: t,
                                v,
                                seen_ms: seen,
                            });
                        }
                        live = v.is_some();
                    }
                    // A sample at an instant that is no scrape of its target (none expected).
                    for (&t, &v) in &own {
                        if !r.contains_key(&t) {
                            points.push(Point::at(t, Some(v)));
                        }
                    }
                    points.sort_by_key(|p| p.t_ms);
                    points
                }
                _ => own.iter().map(|(&t, &v)| Point::at(t, Some(v))).collect(),
            };
            all.push(StoredSeries {
                labels: s.labels.clone(),
                points,
            });
        }
        Store::new(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::promql::eval::{eval, Value};
    use crate::promql::parse::parse;

    fn series(name: &str, instance: &str, points: &[(i64, f64)]) -> PromSeries {
        PromSeries {
            labels: Labels::from([
                ("__name__".to_owned(), name.to_owned()),
                ("job".to_owned(), "pipeline".to_owned()),
                ("instance".to_owned(), instance.to_owned()),
            ]),
            points: points.to_vec(),
        }
    }

    fn at(store: &Store, q: &str, t: i64) -> Vec<(String, f64)> {
        let Value::Vector(v) = eval(store, &parse(q).expect("parses"), t).expect("evaluates")
        else {
            panic!("a vector")
        };
        v.into_iter()
            .map(|s| (s.labels["instance"].clone(), s.value))
            .collect()
    }

    /// Target `a`: scraped at 1000 (10 ms), 2000 (failed, timed out at 0.8 s) and 3000 (0.3 s),
    /// its `lag` sampled by the two scrapes that answered.
    fn target_a() -> Vec<PromSeries> {
        vec![
            series("up", "a", &[(1000, 1.0), (2000, 0.0), (3000, 1.0)]),
            series(
                "scrape_duration_seconds",
                "a",
                &[(1000, 0.01), (2000, 0.8), (3000, 0.3)],
            ),
            series("lag", "a", &[(1000, 5.0), (3000, 7.0)]),
        ]
    }

    /// Proves a series is stale from a failed scrape of its target (up 0) until it is scraped
    /// again, that a sample is unreadable until its scrape ended (timestamp plus
    /// `scrape_duration_seconds`), and that another target's series are untouched.
    #[test]
    fn staleness_and_readability_come_from_up_and_the_scrape_duration() {
        let mut all = target_a();
        all.push(series("up", "b", &[(1500, 1.0), (2500, 1.0)]));
        all.push(series("lag", "b", &[(1500, 1.0), (2500, 2.0)]));
        let store = Store::from_prometheus(&all, Readable::AfterScrape);
        // a's scrape at 2000 failed: stale once it timed out (2800), not before.
        assert_eq!(
            at(&store, "lag", 2500),
            vec![("a".into(), 5.0), ("b".into(), 2.0)]
        );
        assert_eq!(at(&store, "lag", 2900), vec![("b".into(), 2.0)]);
        assert_eq!(
            at(&store, "up", 2900),
            vec![("a".into(), 0.0), ("b".into(), 1.0)]
        );
        // a's scrape at 3000 ended at 3300: until then a is still stale.
        assert_eq!(at(&store, "lag", 3200), vec![("b".into(), 2.0)]);
        assert_eq!(
            at(&store, "lag", 3300),
            vec![("a".into(), 7.0), ("b".into(), 2.0)]
        );
        // A range sees the same: at 3100 a has one readable sample, no rate; at 3300 two.
        assert_eq!(at(&store, "rate(lag{instance=\"a\"}[5s])", 3100), vec![]);
        assert_eq!(at(&store, "rate(lag{instance=\"a\"}[5s])", 3300).len(), 1);
    }

    /// Proves that read as stamped, a scrape's sample is readable at its timestamp, and the
    /// failed scrape's staleness at the failed scrape's.
    #[test]
    fn read_as_stamped_a_sample_is_readable_at_its_timestamp() {
        let store = Store::from_prometheus(&target_a(), Readable::AtTimestamp);
        assert_eq!(at(&store, "lag", 2000), vec![]);
        assert_eq!(at(&store, "lag", 3000), vec![("a".into(), 7.0)]);
    }

    /// Proves a series with no target of its own keeps its samples as stored.
    #[test]
    fn a_series_without_a_target_is_kept_as_is() {
        let s = PromSeries {
            labels: Labels::from([("__name__".to_owned(), "x".to_owned())]),
            points: vec![(1000, 1.0), (5000, 2.0)],
        };
        let store = Store::from_prometheus(&[s], Readable::AfterScrape);
        assert_eq!(
            store.series[0].points,
            vec![Point::at(1000, Some(1.0)), Point::at(5000, Some(2.0))]
        );
    }
}
