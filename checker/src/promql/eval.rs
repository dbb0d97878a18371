//! Evaluates an [`Expr`] at one instant over a [`Store`], the way Prometheus 2.x does: instant
//! selectors take the newest sample within the 5-minute lookback unless it is a staleness
//! marker; range selectors take the samples in `[t - range, t]`; `rate` / `increase` extrapolate
//! like `extrapolatedRate`; `histogram_quantile` interpolates like `bucketQuantile`; arithmetic
//! drops `__name__`, comparisons filter (or give 0/1 with `bool`); set operators match on
//! the labels `on`/`ignoring` name (all but `__name__` by default).

use std::collections::{BTreeMap, HashMap, HashSet};

use super::parse::{AggOp, BinOp, Expr, Func, Matcher, Matching};
use super::store::{Labels, Point, Store, StoredSeries};

/// How far back an instant selector looks.
pub const LOOKBACK_MS: i64 = 5 * 60 * 1000;

/// One element of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Its labels.
    pub labels: Labels,
    /// Its value.
    pub value: f64,
}

/// What an expression evaluates to.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A number.
    Scalar(f64),
    /// An instant vector.
    Vector(Vec<Sample>),
}

/// Why an expression could not be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EvalError(pub String);

fn err<T>(m: impl Into<String>) -> Result<T, EvalError> {
    Err(EvalError(m.into()))
}

fn matches(labels: &Labels, name: Option<&str>, matchers: &[Matcher]) -> bool {
    if let Some(n) = name {
        if labels.get("__name__").map(String::as_str) != Some(n) {
            return false;
        }
    }
    matchers.iter().all(|m| {
        let v = labels.get(&m.name).map(String::as_str).unwrap_or("");
        (v == m.value) != m.negated
    })
}

fn selected<'a>(store: &'a Store, e: &'a Expr) -> Result<Vec<&'a StoredSeries>, EvalError> {
    let Expr::Selector { name, matchers } = e else {
        return err("expected a selector");
    };
    Ok(store
        .named(name.as_deref())
        .filter(|s| matches(&s.labels, name.as_deref(), matchers))
        .collect())
}

/// How many of `points` an evaluation at `t` reads: those stamped at or before `t`, less the
/// newest ones not yet stored then ([`Point::seen_ms`]).
fn readable(points: &[Point], t: i64) -> usize {
    let mut hi = points.partition_point(|p| p.t_ms <= t);
    while hi > 0 && points[hi - 1].seen_ms > t {
        hi -= 1;
    }
    hi
}

/// The newest live sample readable at `t` within the lookback.
fn instant(points: &[Point], t: i64) -> Option<f64> {
    let i = readable(points, t);
    let p = points.get(i.checked_sub(1)?)?;
    if p.t_ms < t - LOOKBACK_MS {
        return None;
    }
    p.v
}

/// The live samples in `[t - range, t]` readable at `t`.
fn window(points: &[Point], t: i64, range_ms: i64) -> Vec<(i64, f64)> {
    let lo = points.partition_point(|p| p.t_ms < t - range_ms);
    let hi = readable(points, t).max(lo);
    points[lo..hi]
        .iter()
        .filter_map(|p| p.v.map(|v| (p.t_ms, v)))
        .collect()
}

fn without_name(labels: &Labels) -> Labels {
    let mut l = labels.clone();
    l.remove("__name__");
    l
}

/// Prometheus's `extrapolatedRate` for counters (`rate`: per second; `increase`: total).
pub fn extrapolated_rate(
    samples: &[(i64, f64)],
    t: i64,
    range_ms: i64,
    per_second: bool,
) -> Option<f64> {
    if samples.len() < 2 {
        return None;
    }
    let (first_t, first_v) = samples[0];
    let (last_t, last_v) = samples[samples.len() - 1];
    let mut result = last_v - first_v;
    let mut prev = 0.0;
    for &(_, v) in samples {
        if v < prev {
            result += prev;
        }
        prev = v;
    }
    let range_start = t - range_ms;
    let mut to_start = (first_t - range_start) as f64 / 1000.0;
    let to_end = (t - last_t) as f64 / 1000.0;
    let sampled = (last_t - first_t) as f64 / 1000.0;
    let average = sampled / (samples.len() - 1) as f64;
    if result > 0.0 && first_v >= 0.0 {
        let to_zero = sampled * (first_v / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    let threshold = average * 1.1;
    let mut interval = sampled;
    interval += if to_start < threshold {
        to_start
    } else {
        average / 2.0
    };
    interval += if to_end < threshold {
        to_end
    } else {
        average / 2.0
    };
    let mut v = result * (interval / sampled);
    if per_second {
        v /= range_ms as f64 / 1000.0;
    }
    Some(v)
}

/// Prometheus's `bucketQuantile` over `(upper bound, cumulative count)` pairs.
pub fn bucket_quantile(q: f64, mut buckets: Vec<(f64, f64)>) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    if !buckets.last().is_some_and(|b| b.0 == f64::INFINITY) {
        return f64::NAN;
    }
    let mut merged: Vec<(f64, f64)> = Vec::new();
    for (le, c) in buckets {
        match merged.last_mut() {
            Some(last) if last.0 == le => last.1 += c,
            _ => merged.push((le, c)),
        }
    }
    let mut max = f64::NEG_INFINITY;
    for b in &mut merged {
        if b.1 > max {
            max = b.1;
        } else if b.1 < max {
            b.1 = max;
        }
    }
    if merged.len() < 2 {
        return f64::NAN;
    }
    let observations = merged[merged.len() - 1].1;
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * observations;
    let n = merged.len() - 1;
    let b = merged[..n].partition_point(|x| x.1 < rank);
    if b == n {
        return merged[n - 1].0;
    }
    if b == 0 && merged[0].0 <= 0.0 {
        return merged[0].0;
    }
    let (mut start, end, mut count) = (0.0, merged[b].0, merged[b].1);
    if b > 0 {
        start = merged[b - 1].0;
        count -= merged[b - 1].1;
        rank -= merged[b - 1].1;
    }
    start + (end - start) * (rank / count)
}

/// Evaluates `e` at `t` (milliseconds).
pub fn eval(store: &Store, e: &Expr, t: i64) -> Result<Value, EvalError> {
    match e {
        Expr::Number(n) => Ok(Value::Scalar(*n)),
        Expr::Selector { .. } => Ok(Value::Vector(
            selected(store, e)?
                .into_iter()
                .filter_map(|s| {
                    instant(&s.points, t).map(|value| Sample {
                        labels: s.labels.clone(),
                        value,
                    })
                })
                .collect(),
        )),
        Expr::Range { .. } => err("a range vector cannot be the result of an expression"),
        Expr::Neg(inner) => match eval(store, inner, t)? {
            Value::Scalar(v) => Ok(Value::Scalar(-v)),
            Value::Vector(v) => Ok(Value::Vector(
                v.into_iter()
                    .map(|s| Sample {
                        labels: without_name(&s.labels),
                        value: -s.value,
                    })
                    .collect(),
            )),
        },
        Expr::Call { func, args } => call(store, *func, args, t),
        Expr::Aggregate {
            op,
            grouping,
            without,
            expr,
        } => {
            let Value::Vector(v) = eval(store, expr, t)? else {
                return err("an aggregation needs a vector");
            };
            Ok(Value::Vector(aggregate(*op, grouping, *without, v)))
        }
        Expr::Binary {
            op,
            lhs,
            rhs,
            return_bool,
            matching,
        } => {
            let l = eval(store, lhs, t)?;
            let r = eval(store, rhs, t)?;
            binary(*op, l, r, *return_bool, matching.as_ref())
        }
    }
}

fn call(store: &Store, func: Func, args: &[Expr], t: i64) -> Result<Value, EvalError> {
    match func {
        Func::Time => {
            if !args.is_empty() {
                return err("time() takes no arguments");
            }
            Ok(Value::Scalar(t as f64 / 1000.0))
        }
        Func::Rate | Func::Increase => {
            let [Expr::Range { selector, range_ms }] = args else {
                return err("rate() and increase() take one range vector");
            };
            let out = selected(store, selector)?
                .into_iter()
                .filter_map(|s| {
                    let w = window(&s.points, t, *range_ms);
                    extrapolated_rate(&w, t, *range_ms, func == Func::Rate).map(|value| Sample {
                        labels: without_name(&s.labels),
                        value,
                    })
                })
                .collect();
            Ok(Value::Vector(out))
        }
        Func::HistogramQuantile => {
            let [q, v] = args else {
                return err("histogram_quantile() takes a quantile and a vector");
            };
            let Value::Scalar(q) = eval(store, q, t)? else {
                return err("histogram_quantile()'s first argument is a number");
            };
            let Value::Vector(v) = eval(store, v, t)? else {
                return err("histogram_quantile()'s second argument is a vector");
            };
            let mut groups: BTreeMap<Labels, Vec<(f64, f64)>> = BTreeMap::new();
            for s in v {
                let Some(le) = s.labels.get("le").and_then(|l| parse_le(l)) else {
                    continue;
                };
                let mut key = without_name(&s.labels);
                key.remove("le");
                groups.entry(key).or_default().push((le, s.value));
            }
            Ok(Value::Vector(
                groups
                    .into_iter()
                    .map(|(labels, b)| Sample {
                        labels,
                        value: bucket_quantile(q, b),
                    })
                    .collect(),
            ))
        }
    }
}

fn parse_le(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" | "inf" => Some(f64::INFINITY),
        other => other.parse().ok(),
    }
}

fn aggregate(op: AggOp, grouping: &[String], without: bool, v: Vec<Sample>) -> Vec<Sample> {
    let mut groups: BTreeMap<Labels, Vec<f64>> = BTreeMap::new();
    for s in v {
        let key: Labels = if without {
            s.labels
                .into_iter()
                .filter(|(k, _)| k != "__name__" && !grouping.contains(k))
                .collect()
        } else {
            s.labels
                .into_iter()
                .filter(|(k, _)| grouping.contains(k))
                .collect()
        };
        groups.entry(key).or_default().push(s.value);
    }
    groups
        .into_iter()
        .map(|(labels, vals)| {
            let value = match op {
                AggOp::Sum => vals.iter().sum(),
                AggOp::Count => vals.len() as f64,
                AggOp::Avg => vals.iter().sum::<f64>() / vals.len() as f64,
                AggOp::Max => {
                    vals.iter().copied().fold(
                        f64::NAN,
                        |m, x| {
                            if m < x || m.is_nan() {
                                x
                            } else {
                                m
                            }
                        },
                    )
                }
                AggOp::Min => {
                    vals.iter().copied().fold(
                        f64::NAN,
                        |m, x| {
                            if m > x || m.is_nan() {
                                x
                            } else {
                                m
                            }
                        },
                    )
                }
            };
            Sample { labels, value }
        })
        .collect()
}

/// `(value, keep)` of one element pair, like Prometheus's `vectorElemBinop`.
fn elem(op: BinOp, l: f64, r: f64) -> (f64, bool) {
    match op {
        BinOp::Add => (l + r, true),
        BinOp::Sub => (l - r, true),
        BinOp::Mul => (l * r, true),
        BinOp::Div => (l / r, true),
        BinOp::Eq => (l, l == r),
        BinOp::Ne => (l, l != r),
        BinOp::Gt => (l, l > r),
        BinOp::Lt => (l, l < r),
        BinOp::Ge => (l, l >= r),
        BinOp::Le => (l, l <= r),
        BinOp::And | BinOp::Or | BinOp::Unless => (l, true),
    }
}

fn signature(labels: &Labels, m: Option<&Matching>) -> Vec<(String, String)> {
    match m {
        Some(Matching {
            on: true,
            labels: on,
        }) => on
            .iter()
            .map(|k| (k.clone(), labels.get(k).cloned().unwrap_or_default()))
            .collect(),
        Some(Matching {
            on: false,
            labels: ig,
        }) => labels
            .iter()
            .filter(|(k, _)| *k != "__name__" && !ig.contains(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        None => labels
            .iter()
            .filter(|(k, _)| *k != "__name__")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

fn binary(
    op: BinOp,
    l: Value,
    r: Value,
    return_bool: bool,
    m: Option<&Matching>,
) -> Result<Value, EvalError> {
    let finish = |value: f64, keep: bool| -> Option<f64> {
        if return_bool {
            Some(if keep { 1.0 } else { 0.0 })
        } else {
            keep.then_some(value)
        }
    };
    let drop_name = !op.is_comparison() || return_bool;
    match (l, r) {
        (Value::Scalar(a), Value::Scalar(b)) => {
            if op.is_set() || (op.is_comparison() && !return_bool) {
                return err("comparisons between numbers need bool; set operators need vectors");
            }
            let (v, keep) = elem(op, a, b);
            Ok(Value::Scalar(finish(v, keep).unwrap_or(f64::NAN)))
        }
        (Value::Vector(v), Value::Scalar(s)) | (Value::Scalar(s), Value::Vector(v))
            if op.is_set() =>
        {
            let _ = (v, s);
            err("set operators need vectors on both sides")
        }
        (Value::Vector(v), Value::Scalar(s)) => Ok(Value::Vector(
            v.into_iter()
                .filter_map(|smp| {
                    let (value, keep) = elem(op, smp.value, s);
                    let value = finish(value, keep)?;
                    let labels = if drop_name {
                        without_name(&smp.labels)
                    } else {
                        smp.labels
                    };
                    Some(Sample { labels, value })
                })
                .collect(),
        )),
        (Value::Scalar(s), Value::Vector(v)) => Ok(Value::Vector(
            v.into_iter()
                .filter_map(|smp| {
                    let (mut value, keep) = elem(op, s, smp.value);
                    if op.is_comparison() {
                        value = smp.value;
                    }
                    let value = finish(value, keep)?;
                    let labels = if drop_name {
                        without_name(&smp.labels)
                    } else {
                        smp.labels
                    };
                    Some(Sample { labels, value })
                })
                .collect(),
        )),
        (Value::Vector(a), Value::Vector(b)) => vector_vector(op, a, b, return_bool, m),
    }
}

fn vector_vector(
    op: BinOp,
    a: Vec<Sample>,
    b: Vec<Sample>,
    return_bool: bool,
    m: Option<&Matching>,
) -> Result<Value, EvalError> {
    let sig = |s: &Sample| signature(&s.labels, m);
    match op {
        BinOp::And => {
            let right: HashSet<_> = b.iter().map(sig).collect();
            return Ok(Value::Vector(
                a.into_iter().filter(|s| right.contains(&sig(s))).collect(),
            ));
        }
        BinOp::Unless => {
            let right: HashSet<_> = b.iter().map(sig).collect();
            return Ok(Value::Vector(
                a.into_iter().filter(|s| !right.contains(&sig(s))).collect(),
            ));
        }
        BinOp::Or => {
            let left: HashSet<_> = a.iter().map(sig).collect();
            let mut out = a;
            out.extend(b.into_iter().filter(|s| !left.contains(&sig(s))));
            return Ok(Value::Vector(out));
        }
        _ => {}
    }
    let mut right: HashMap<Vec<(String, String)>, Sample> = HashMap::new();
    for s in b {
        if right.insert(sig(&s), s).is_some() {
            return err("many-to-many matching: the right side has duplicate label sets");
        }
    }
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for s in a {
        let key = sig(&s);
        let Some(other) = right.get(&key) else {
            continue;
        };
        if !seen.insert(key) {
            return err("many-to-many matching: the left side has duplicate label sets");
        }
        let (value, keep) = elem(op, s.value, other.value);
        let value = if return_bool {
            if keep {
                1.0
            } else {
                0.0
            }
        } else if keep {
            value
        } else {
            continue;
        };
        let mut labels = if !op.is_comparison() || return_bool {
            without_name(&s.labels)
        } else {
            s.labels
        };
        match m {
            Some(Matching {
                on: true,
                labels: on,
            }) => labels.retain(|k, _| on.contains(k)),
            Some(Matching {
                on: false,
                labels: ig,
            }) => labels.retain(|k, _| !ig.contains(k)),
            None => {}
        }
        out.push(Sample { labels, value });
    }
    Ok(Value::Vector(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves `increase` extrapolates to the window's edges and to the counter's zero like
    /// Prometheus: 10 samples 1 s apart rising by 1 over a 10 s window (first sample at the
    /// window's start) give 9 (no extrapolation past the samples at both edges), and a window
    /// whose first sample is 5 s in extrapolates by half an interval.
    #[test]
    fn increase_extrapolates_like_prometheus() {
        let s: Vec<(i64, f64)> = (0..10).map(|i| (i * 1000, i as f64)).collect();
        let v = extrapolated_rate(&s, 9000, 9000, false).expect("value");
        assert!((v - 9.0).abs() < 1e-9, "{v}");
        let late: Vec<(i64, f64)> = (5..10).map(|i| (i * 1000, 10.0 + i as f64)).collect();
        let v = extrapolated_rate(&late, 9000, 9000, false).expect("value");
        // 4 over 4 s sampled, extrapolated by 0.5 s at the start (5 s is past 1.1 intervals).
        assert!((v - 4.0 * 4.5 / 4.0).abs() < 1e-9, "{v}");
        assert_eq!(extrapolated_rate(&s[..1], 9000, 9000, false), None);
    }

    /// Proves the quantile interpolates inside a bucket, reports the largest finite bound for
    /// the +Inf bucket, and is NaN without a +Inf bucket or observations.
    #[test]
    fn bucket_quantiles() {
        let b = vec![(0.1, 9.0), (0.5, 9.0), (1.0, 10.0), (f64::INFINITY, 10.0)];
        assert!((bucket_quantile(0.99, b) - 0.95).abs() < 1e-9);
        let inf = vec![(0.1, 0.0), (f64::INFINITY, 5.0)];
        assert_eq!(bucket_quantile(0.99, inf), 0.1);
        assert!(bucket_quantile(0.5, vec![(0.1, 1.0)]).is_nan());
        assert!(bucket_quantile(0.5, vec![(0.1, 0.0), (f64::INFINITY, 0.0)]).is_nan());
    }
}
