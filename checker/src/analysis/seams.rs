//! Per-second seam signals and retry load, derived from `metrics.csv` (contract §3, §5).
//!
//! One vector element per whole second since the run started (`t_s` floored). The signals are
//! what an operator would alert on at each seam: consumer lag (order log), quorum write and read
//! p99 (store), leader churn (leases), retry-budget use (service calls) and duplicate effects
//! (idempotency).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::metrics::{self, Metrics, Series};

/// Metric names from contract §3.
pub mod names {
    /// Logical requests per downstream.
    pub const REQUESTS: &str = "requests_total";
    /// Retries (attempts after the first) per downstream.
    pub const RETRIES: &str = "retry_attempts_total";
    /// Retries the budget refused, per downstream.
    pub const BUDGET_EXHAUSTED: &str = "retry_budget_exhausted_total";
    /// Repeats of an idempotency key that found a stored result.
    pub const DUPLICATES: &str = "duplicate_effects_total";
    /// Order log end minus consumed offset.
    pub const CONSUMER_LAG: &str = "consumer_lag_records";
    /// Histogram of quorum writes.
    pub const QUORUM_WRITE: &str = "quorum_write_duration_seconds";
    /// Histogram of quorum reads.
    pub const QUORUM_READ: &str = "quorum_read_duration_seconds";
    /// Elections won, per domain.
    pub const ELECTIONS: &str = "leader_elections_total";
    /// The token of the current lease, per domain.
    pub const LEADER_TOKEN: &str = "leader_token";
}

/// The retry budget the pipeline is configured with, as the checks assume it. Recorded in the
/// details of every check that uses it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct BudgetParams {
    /// Retries allowed as a share of logical requests.
    pub ratio: f64,
    /// Retries allowed per second per caller regardless of traffic.
    pub floor_retries_per_s: f64,
    /// Length of the windows the budget is judged over.
    pub window_s: usize,
}

impl Default for BudgetParams {
    fn default() -> Self {
        BudgetParams {
            ratio: 0.10,
            floor_retries_per_s: 1.0,
            window_s: 10,
        }
    }
}

/// First attempts, retries and refused retries per second towards one downstream, summed over
/// every caller.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetryLoad {
    /// The service called, e.g. `payment`.
    pub downstream: String,
    /// Logical requests (first attempts) per second.
    pub first_attempts: Vec<f64>,
    /// Retries per second.
    pub retries: Vec<f64>,
    /// Retries refused by the budget per second.
    pub refused: Vec<f64>,
    /// How many callers (node and role) call it.
    pub callers: usize,
    /// The first second with a measured increase (the first sample of a counter is only its
    /// base); earlier seconds are not data.
    pub from_s: usize,
}

/// One caller's counts over one window.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct CallerWindow {
    /// Node of the caller.
    pub node: String,
    /// Role of the caller.
    pub role: String,
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
    /// Retries refused by the budget.
    pub refused: f64,
    /// The requests the allowance rests on: this window's and the previous window's (the
    /// pipeline's budget slides, so a retry late in one window may rest on requests made in
    /// the window before).
    pub budget_requests: f64,
    /// What the budget allows: `ratio * budget_requests + floor * (window length + 1 s)`; the
    /// extra second is the grain of the once-a-second scrape.
    pub allowed_retries: f64,
}

type CallerKey = (String, String, String);

fn by_caller(m: &Metrics, name: &str) -> BTreeMap<CallerKey, Vec<f64>> {
    let seconds = m.seconds();
    let mut out: BTreeMap<CallerKey, Vec<f64>> = BTreeMap::new();
    for s in m.named(name) {
        let key = (
            s.node.clone(),
            s.role.clone(),
            s.label("downstream").to_owned(),
        );
        let rates = metrics::counter_per_second(s, seconds);
        let slot = out.entry(key).or_insert_with(|| vec![0.0; seconds]);
        for (o, v) in slot.iter_mut().zip(rates) {
            *o += v;
        }
    }
    out
}

/// Retry load per downstream, sorted by downstream name.
pub fn retry_load(m: &Metrics) -> Vec<RetryLoad> {
    let seconds = m.seconds();
    let requests = by_caller(m, names::REQUESTS);
    let retries = by_caller(m, names::RETRIES);
    let refused = by_caller(m, names::BUDGET_EXHAUSTED);
    let downstreams: BTreeSet<&str> = requests
        .keys()
        .chain(retries.keys())
        .chain(refused.keys())
        .map(|k| k.2.as_str())
        .collect();
    let sum = |map: &BTreeMap<CallerKey, Vec<f64>>, d: &str| {
        let mut out = vec![0.0; seconds];
        for (_, v) in map.iter().filter(|(k, _)| k.2 == d) {
            for (o, x) in out.iter_mut().zip(v) {
                *o += x;
            }
        }
        out
    };
    downstreams
        .into_iter()
        .map(|d| RetryLoad {
            downstream: d.to_owned(),
            first_attempts: sum(&requests, d),
            retries: sum(&retries, d),
            refused: sum(&refused, d),
            callers: requests.keys().filter(|k| k.2 == d).count(),
            from_s: m
                .named(names::REQUESTS)
                .filter(|s| s.label("downstream") == d)
                .filter_map(|s| s.points.get(1))
                .map(|(t, _)| t.floor() as usize)
                .min()
                .unwrap_or(0),
        })
        .collect()
}

/// Every caller's counts per budget window (the last window may be shorter).
pub fn caller_windows(m: &Metrics, budget: &BudgetParams) -> Vec<CallerWindow> {
    let seconds = m.seconds();
    let window = budget.window_s.max(1);
    let requests = by_caller(m, names::REQUESTS);
    let retries = by_caller(m, names::RETRIES);
    let refused = by_caller(m, names::BUDGET_EXHAUSTED);
    let callers: BTreeSet<&CallerKey> = requests.keys().chain(retries.keys()).collect();
    let zeros = vec![0.0; seconds];
    let mut out = Vec::new();
    for key in callers {
        let req = requests.get(key).unwrap_or(&zeros);
        let ret = retries.get(key).unwrap_or(&zeros);
        let refu = refused.get(key).unwrap_or(&zeros);
        for start in (0..seconds).step_by(window) {
            let end = (start + window).min(seconds);
            let total = |v: &[f64]| v[start..end].iter().sum::<f64>();
            let requests = total(req);
            let budget_requests = req[start.saturating_sub(window)..end].iter().sum::<f64>();
            out.push(CallerWindow {
                node: key.0.clone(),
                role: key.1.clone(),
                downstream: key.2.clone(),
                start_s: start,
                end_s: end,
                requests,
                retries: total(ret),
                refused: total(refu),
                budget_requests,
                allowed_retries: budget.ratio * budget_requests
                    + budget.floor_retries_per_s * (end - start + 1) as f64,
            });
        }
    }
    out
}

/// One seam signal: a value per second and the threshold past which it counts as "moved".
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Signal {
    /// Stable key, e.g. `consumer_lag`; also the CSV file name.
    pub key: &'static str,
    /// Human name, e.g. `consumer lag`.
    pub title: &'static str,
    /// Unit of the values, e.g. `records`.
    pub unit: &'static str,
    /// Value per second; `None` where nothing was sampled.
    pub values: Vec<Option<f64>>,
    /// Past this the signal has moved; `None` when the metric is absent.
    pub threshold: Option<f64>,
    /// How the threshold was chosen.
    pub rule: String,
    /// Typical value before the first fault, if any was sampled.
    pub baseline: Option<f64>,
}

impl Signal {
    /// True if the metric behind it was present in `metrics.csv`.
    pub fn present(&self) -> bool {
        self.values.iter().any(Option::is_some)
    }

    /// The first second at or after `from_s` and before `until_s` where the value exceeds the
    /// threshold.
    pub fn first_crossing(&self, from_s: usize, until_s: usize) -> Option<usize> {
        let threshold = self.threshold?;
        (from_s..until_s.min(self.values.len()))
            .find(|&s| self.values[s].is_some_and(|v| v > threshold))
    }
}

/// How thresholds are chosen. A threshold is the larger of a floor and a multiple of the
/// baseline (the median value before the first fault), so a noisy system is not "moved" by noise
/// and a quiet one is not moved by one record.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct SignalParams {
    /// Consumer lag floor, in records.
    pub lag_floor_records: f64,
    /// Quorum p99 floor, in seconds.
    pub quorum_p99_floor_s: f64,
    /// Multiple of the baseline that counts as moved (lag and quorum p99).
    pub baseline_factor: f64,
    /// Leader elections per second that count as churn.
    pub elections_per_s: f64,
    /// Share of the retry budget in use that counts as moved.
    pub budget_use: f64,
    /// Duplicate effects per second that count as moved.
    pub duplicates_per_s: f64,
    /// How long after a heal a signal may still be attributed to the fault.
    pub grace_s: usize,
    /// Seconds at the start of the run left out of baselines (start-up elections, warm-up).
    pub warmup_s: usize,
}

impl Default for SignalParams {
    fn default() -> Self {
        SignalParams {
            lag_floor_records: 10.0,
            quorum_p99_floor_s: 0.05,
            baseline_factor: 3.0,
            elections_per_s: 0.0,
            budget_use: 0.5,
            duplicates_per_s: 0.0,
            grace_s: 10,
            warmup_s: 2,
        }
    }
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

fn baseline(values: &[Option<f64>], from_s: usize, until_s: usize) -> Option<f64> {
    let until = until_s.min(values.len());
    median(
        values
            .get(from_s.min(until)..until)
            .unwrap_or(&[])
            .iter()
            .flatten()
            .copied()
            .collect(),
    )
}

/// Every seam signal per second. `first_fault_s` bounds the baseline period.
pub fn signals(
    m: &Metrics,
    p: &SignalParams,
    budget: &BudgetParams,
    first_fault_s: Option<usize>,
) -> Vec<Signal> {
    let seconds = m.seconds();
    let base_until = first_fault_s.unwrap_or(seconds);
    let relative = |key, title, unit, values: Vec<Option<f64>>, floor: f64| {
        let base = baseline(&values, p.warmup_s, base_until);
        let threshold = base.map_or(floor, |b| (b * p.baseline_factor).max(floor));
        Signal {
            key,
            title,
            unit,
            threshold: values.iter().any(Option::is_some).then_some(threshold),
            rule: format!(
                "max({floor}, {} x baseline median before the first fault)",
                p.baseline_factor
            ),
            values,
            baseline: base,
        }
    };
    let absolute =
        |key, title, unit, values: Vec<Option<f64>>, threshold: f64, rule: &str| Signal {
            key,
            title,
            unit,
            baseline: baseline(&values, p.warmup_s, base_until),
            threshold: values.iter().any(Option::is_some).then_some(threshold),
            rule: rule.to_owned(),
            values,
        };
    let lag = metrics::gauges_max_per_second(m.named(names::CONSUMER_LAG), seconds);
    let write_p99 = metrics::histogram_quantile_per_second(m, names::QUORUM_WRITE, 0.99, seconds);
    let read_p99 = metrics::histogram_quantile_per_second(m, names::QUORUM_READ, 0.99, seconds);
    vec![
        relative(
            "consumer_lag",
            "consumer lag",
            "records",
            lag,
            p.lag_floor_records,
        ),
        relative(
            "quorum_write_p99",
            "quorum write p99",
            "s",
            with_presence(m, names::QUORUM_WRITE, write_p99),
            p.quorum_p99_floor_s,
        ),
        relative(
            "quorum_read_p99",
            "quorum read p99",
            "s",
            with_presence(m, names::QUORUM_READ, read_p99),
            p.quorum_p99_floor_s,
        ),
        absolute(
            "leader_churn",
            "leader churn",
            "elections/s",
            leader_churn(m),
            p.elections_per_s,
            "any election (more than 0 per second)",
        ),
        absolute(
            "retry_budget_use",
            "retry-budget use",
            "share of budget",
            budget_use(m, budget),
            p.budget_use,
            "retries / (ratio x requests + floor) per second",
        ),
        absolute(
            "duplicate_effects",
            "duplicate effects",
            "effects/s",
            counter_signal(m, names::DUPLICATES),
            p.duplicates_per_s,
            "any duplicate effect (more than 0 per second)",
        ),
    ]
}

/// A histogram quantile is `None` in seconds without observations; where the histogram exists
/// at all, such seconds read as 0 (nothing was slow) so the panel is continuous.
fn with_presence(m: &Metrics, base: &str, q: Vec<Option<f64>>) -> Vec<Option<f64>> {
    let name = format!("{base}_bucket");
    if !m.has(&name) {
        return q;
    }
    let sampled = sampled_seconds(m, &name);
    q.into_iter()
        .zip(sampled)
        .map(|(v, s)| if s { Some(v.unwrap_or(0.0)) } else { v })
        .collect()
}

fn sampled_seconds(m: &Metrics, name: &str) -> Vec<bool> {
    let mut out = vec![false; m.seconds()];
    for s in m.named(name) {
        for &(t, _) in &s.points {
            if let Some(slot) = out.get_mut(t.floor() as usize) {
                *slot = true;
            }
        }
    }
    out
}

fn counter_signal(m: &Metrics, name: &str) -> Vec<Option<f64>> {
    if !m.has(name) {
        return vec![None; m.seconds()];
    }
    let sampled = sampled_seconds(m, name);
    let mut out: Vec<Option<f64>> = sampled.iter().map(|s| s.then_some(0.0)).collect();
    let first_answer = first_answers(m);
    for series in m.named(name) {
        for (o, v) in out
            .iter_mut()
            .zip(metrics::counter_at_sample(series, m.seconds()))
        {
            if v > 0.0 {
                *o = Some(o.unwrap_or(0.0) + v);
            }
        }
        if let Some((t, v)) = appeared_at(series, &first_answer) {
            if let Some(o) = out.get_mut(t.floor() as usize) {
                *o = Some(o.unwrap_or(0.0) + v);
            }
        }
    }
    out
}

/// The first `t_s` each target (node, role) answered a scrape with any series.
fn first_answers(m: &Metrics) -> BTreeMap<(&str, &str), f64> {
    let mut first: BTreeMap<(&str, &str), f64> = BTreeMap::new();
    for s in &m.series {
        if let Some(&(t, _)) = s.points.first() {
            let slot = first.entry((&s.node, &s.role)).or_insert(t);
            *slot = slot.min(t);
        }
    }
    first
}

/// A counter series that first appears in a later scrape of a target that was already
/// answering (a pipeline that does not export it at 0 from the start): it started at 0 in
/// between, so its first value is an increase at its first sample. Prometheus's `increase()`
/// does not count it; the signal does. A series present in the target's first scrape counts
/// from there (its first value is the process's history before the scrapes).
fn appeared_at(series: &Series, first_answer: &BTreeMap<(&str, &str), f64>) -> Option<(f64, f64)> {
    let &(t, v) = series.points.first()?;
    let since = *first_answer.get(&(series.node.as_str(), series.role.as_str()))?;
    (t > since && v > 0.0 && v.is_finite()).then_some((t, v))
}

/// Elections per second, or per-domain increases of the largest leader token when the
/// elections counter is absent.
fn leader_churn(m: &Metrics) -> Vec<Option<f64>> {
    if m.has(names::ELECTIONS) {
        return counter_signal(m, names::ELECTIONS);
    }
    let tokens = leader_tokens(m);
    if tokens.is_empty() {
        return vec![None; m.seconds()];
    }
    let mut out = vec![Some(0.0); m.seconds()];
    for values in tokens.values() {
        let mut last: Option<f64> = None;
        for (s, v) in values.iter().enumerate() {
            if let Some(v) = *v {
                if last.is_some_and(|l| v > l) {
                    out[s] = out[s].map(|c| c + 1.0);
                }
                last = Some(last.map_or(v, |l: f64| l.max(v)));
            }
        }
    }
    out
}

/// The largest `leader_token` per domain per second.
pub fn leader_tokens(m: &Metrics) -> BTreeMap<String, Vec<Option<f64>>> {
    let mut domains: BTreeMap<String, Vec<&metrics::Series>> = BTreeMap::new();
    for s in m.named(names::LEADER_TOKEN) {
        domains
            .entry(s.label("domain").to_owned())
            .or_default()
            .push(s);
    }
    domains
        .into_iter()
        .map(|(d, series)| (d, metrics::gauges_max_per_second(series, m.seconds())))
        .collect()
}

fn budget_use(m: &Metrics, budget: &BudgetParams) -> Vec<Option<f64>> {
    if !m.has(names::REQUESTS) {
        return vec![None; m.seconds()];
    }
    let loads = retry_load(m);
    let callers: usize = loads.iter().map(|l| l.callers).sum();
    let sampled = sampled_seconds(m, names::REQUESTS);
    (0..m.seconds())
        .map(|s| {
            let requests: f64 = loads.iter().map(|l| l.first_attempts[s]).sum();
            let retries: f64 = loads.iter().map(|l| l.retries[s]).sum();
            let allowed = budget.ratio * requests + budget.floor_retries_per_s * callers as f64;
            sampled[s].then(|| {
                if allowed > 0.0 {
                    retries / allowed
                } else {
                    0.0
                }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(node: &str, metric: &str, points: Vec<(f64, f64)>) -> Series {
        Series {
            node: node.into(),
            role: "order".into(),
            metric: metric.into(),
            labels: [("domain".to_owned(), "order".to_owned())].into(),
            points,
        }
    }

    /// Proves a counter series that first appears at 1 in a later scrape of a target already
    /// answering (a new leader's first election, from a pipeline that did not export the
    /// counter at 0) is counted as an increase in the second it appeared, while a series
    /// present at 1 from the target's first scrape (a start-up election) is not.
    #[test]
    fn an_appearing_counter_series_is_an_increase() {
        let lag = |node| {
            series(
                node,
                "consumer_lag_records",
                (0..8).map(|t| (t as f64 + 0.1, 0.0)).collect(),
            )
        };
        let m = Metrics {
            series: vec![
                lag("n1"),
                lag("n2"),
                series(
                    "n1",
                    names::ELECTIONS,
                    (0..8).map(|t| (t as f64 + 0.1, 1.0)).collect(),
                ),
                series(
                    "n2",
                    names::ELECTIONS,
                    (5..8).map(|t| (t as f64 + 0.1, 1.0)).collect(),
                ),
            ],
            rows: 30,
            end_s: 7.1,
        };
        let churn = leader_churn(&m);
        assert_eq!(churn[5], Some(1.0), "{churn:?}");
        let elsewhere: f64 = churn
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 5)
            .filter_map(|(_, v)| *v)
            .sum();
        assert_eq!(elsewhere, 0.0, "{churn:?}");
    }
}
