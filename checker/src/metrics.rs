//! `metrics.csv` (contract §5): one scrape of every role per second, long format
//! `t_s,node,role,metric,labels,value`. The reader groups rows into [`Series`] (one per node, role,
//! metric and label set) and names the file and line of anything malformed.
//!
//! The helpers turn raw samples into per-second values on the run's clock: counter increases
//! (restarts detected as a drop), gauge values, and histogram quantiles from `_bucket` deltas the
//! way Prometheus' `histogram_quantile` computes them.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::rundir::ReadError;

/// The header the harness writes.
pub const HEADER: [&str; 6] = ["t_s", "node", "role", "metric", "labels", "value"];
/// Upper bound on the seconds a run may cover (a day): a `t_s` past it is malformed, so one bad
/// row cannot make the per-second vectors huge.
pub const MAX_RUN_S: f64 = 86_400.0;

/// One time series: samples of one metric with one label set from one role on one node.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Node name, e.g. `n1`.
    pub node: String,
    /// Role, e.g. `order`.
    pub role: String,
    /// Metric name, e.g. `requests_total`.
    pub metric: String,
    /// Labels, e.g. `downstream=payment`.
    pub labels: BTreeMap<String, String>,
    /// `(t_s, value)` in time order.
    pub points: Vec<(f64, f64)>,
}

impl Series {
    /// The value of label `name`, or `""`.
    pub fn label(&self, name: &str) -> &str {
        self.labels.get(name).map(String::as_str).unwrap_or("")
    }
}

/// Every series in `metrics.csv`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metrics {
    /// In order of first appearance.
    pub series: Vec<Series>,
    /// Number of data rows read.
    pub rows: usize,
    /// Largest `t_s` seen.
    pub end_s: f64,
}

impl Metrics {
    /// Series of metric `name`.
    pub fn named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Series> + 'a {
        self.series.iter().filter(move |s| s.metric == name)
    }

    /// True if any series of metric `name` exists.
    pub fn has(&self, name: &str) -> bool {
        self.named(name).next().is_some()
    }

    /// True if any series comes from `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.series.iter().any(|s| s.role == role)
    }

    /// Whole seconds covered: every per-second vector has this length.
    pub fn seconds(&self) -> usize {
        self.end_s.max(0.0).floor() as usize + 1
    }
}

/// Parses a Prometheus label set `{a="x",b="y"}` (braces optional, empty allowed).
pub fn parse_labels(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    let inner = text.trim();
    let inner = inner
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .unwrap_or(inner);
    let mut chars = inner.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut name = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=') {
            name.push(c);
        }
        if chars.next() != Some('=') || chars.next() != Some('"') {
            return Err(format!("labels {text:?}: expected name=\"value\""));
        }
        let mut value = String::new();
        loop {
            match chars.next() {
                None => return Err(format!("labels {text:?}: unterminated value")),
                Some('"') => break,
                Some('\\') => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(c) => value.push(c),
                    None => return Err(format!("labels {text:?}: unterminated escape")),
                },
                Some(c) => value.push(c),
            }
        }
        let name = name.trim();
        if name.is_empty() {
            return Err(format!("labels {text:?}: empty label name"));
        }
        out.insert(name.to_owned(), value);
    }
}

/// Reads `metrics.csv`. A wrong header, a short row, a bad number or label set is an error
/// naming the line; a last row cut mid-line is [`ReadError::Truncated`].
pub fn read_metrics(path: &Path) -> Result<Metrics, ReadError> {
    let bytes = std::fs::read(path).map_err(|source| ReadError::Io {
        path: path.to_owned(),
        source,
    })?;
    let complete = bytes.is_empty() || bytes.ends_with(b"\n");
    let total_lines = bytes.iter().filter(|b| **b == b'\n').count() + usize::from(!complete);
    let malformed = |line: usize, message: String| {
        if !complete && line >= total_lines {
            ReadError::Truncated {
                path: path.to_owned(),
                line,
            }
        } else {
            ReadError::Malformed {
                path: path.to_owned(),
                line,
                message,
            }
        }
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(bytes.as_slice());
    let header = reader
        .headers()
        .map_err(|e| malformed(1, e.to_string()))?
        .clone();
    if header.iter().collect::<Vec<_>>() != HEADER {
        return Err(malformed(
            1,
            format!("header {:?}, expected {}", header, HEADER.join(",")),
        ));
    }
    let mut metrics = Metrics::default();
    let mut index: HashMap<(String, String, String, String), usize> = HashMap::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map(|p| p.line() as usize).unwrap_or(0);
            malformed(line, e.to_string())
        })?;
        let line = record.position().map(|p| p.line() as usize).unwrap_or(0);
        let field = |i: usize| record.get(i).unwrap_or("");
        let t_s: f64 = field(0)
            .trim()
            .parse()
            .map_err(|_| malformed(line, format!("t_s {:?} is not a number", field(0))))?;
        if !(0.0..=MAX_RUN_S).contains(&t_s) {
            return Err(malformed(
                line,
                format!("t_s {t_s} is outside 0..={MAX_RUN_S}"),
            ));
        }
        let value: f64 = field(5)
            .trim()
            .parse()
            .map_err(|_| malformed(line, format!("value {:?} is not a number", field(5))))?;
        let labels = parse_labels(field(4)).map_err(|m| malformed(line, m))?;
        let key = (
            field(1).to_owned(),
            field(2).to_owned(),
            field(3).to_owned(),
            field(4).to_owned(),
        );
        let i = *index.entry(key).or_insert_with(|| {
            metrics.series.push(Series {
                node: field(1).to_owned(),
                role: field(2).to_owned(),
                metric: field(3).to_owned(),
                labels,
                points: Vec::new(),
            });
            metrics.series.len() - 1
        });
        metrics.series[i].points.push((t_s, value));
        metrics.rows += 1;
        metrics.end_s = metrics.end_s.max(t_s);
    }
    for s in &mut metrics.series {
        s.points.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    Ok(metrics)
}

/// Increases of a counter per second, `seconds` long. An increase between two samples is spread
/// evenly over the seconds between them (a missed scrape does not make a spike); a drop is a
/// restart and counts the new value as the increase. The first sample only sets the base.
pub fn counter_per_second(series: &Series, seconds: usize) -> Vec<f64> {
    counter_increases(series, seconds, true)
}

/// Increases of a counter per second, each counted whole in the second of the sample that
/// showed it (for "did anything happen" signals, where spreading would dilute one event).
pub fn counter_at_sample(series: &Series, seconds: usize) -> Vec<f64> {
    counter_increases(series, seconds, false)
}

fn counter_increases(series: &Series, seconds: usize, spread: bool) -> Vec<f64> {
    let mut out = vec![0.0; seconds];
    for pair in series.points.windows(2) {
        let ((t0, v0), (t1, v1)) = (pair[0], pair[1]);
        let delta = if v1 >= v0 { v1 - v0 } else { v1 };
        if delta <= 0.0 || !delta.is_finite() {
            continue;
        }
        let last = t1.floor() as usize;
        let first = if spread {
            (t0.floor() as usize + 1).min(last)
        } else {
            last
        };
        let span = (last - first + 1) as f64;
        for slot in out.iter_mut().take(last + 1).skip(first) {
            *slot += delta / span;
        }
    }
    out
}

/// Sum of [`counter_per_second`] over several series.
pub fn counters_per_second<'a>(
    series: impl IntoIterator<Item = &'a Series>,
    seconds: usize,
) -> Vec<f64> {
    let mut out = vec![0.0; seconds];
    for s in series {
        for (o, v) in out.iter_mut().zip(counter_per_second(s, seconds)) {
            *o += v;
        }
    }
    out
}

/// The last value of a gauge in each second, `None` where it was not sampled.
pub fn gauge_per_second(series: &Series, seconds: usize) -> Vec<Option<f64>> {
    let mut out = vec![None; seconds];
    for &(t, v) in &series.points {
        if let Some(slot) = out.get_mut(t.floor() as usize) {
            *slot = Some(v);
        }
    }
    out
}

/// The largest of several gauges in each second.
pub fn gauges_max_per_second<'a>(
    series: impl IntoIterator<Item = &'a Series>,
    seconds: usize,
) -> Vec<Option<f64>> {
    let mut out: Vec<Option<f64>> = vec![None; seconds];
    for s in series {
        for (o, v) in out.iter_mut().zip(gauge_per_second(s, seconds)) {
            if let Some(v) = v {
                *o = Some(o.map_or(v, |cur: f64| cur.max(v)));
            }
        }
    }
    out
}

/// Quantile `q` (0..1) per second of histogram `base` (series `<base>_bucket` with an `le`
/// label), from bucket increases summed over every node and label set. `None` where no
/// observation fell in that second. Interpolates linearly inside a bucket like Prometheus; an
/// observation in the `+Inf` bucket reports the largest finite bound.
pub fn histogram_quantile_per_second(
    metrics: &Metrics,
    base: &str,
    q: f64,
    seconds: usize,
) -> Vec<Option<f64>> {
    let bucket_name = format!("{base}_bucket");
    let mut buckets: Vec<(f64, Vec<f64>)> = Vec::new();
    for s in metrics.named(&bucket_name) {
        let Ok(le) = s.label("le").parse::<f64>() else {
            continue;
        };
        let i = match buckets.iter().position(|(b, _)| *b == le) {
            Some(i) => i,
            None => {
                buckets.push((le, vec![0.0; seconds]));
                buckets.len() - 1
            }
        };
        for (o, v) in buckets[i].1.iter_mut().zip(counter_per_second(s, seconds)) {
            *o += v;
        }
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    (0..seconds)
        .map(|sec| {
            let cumulative: Vec<(f64, f64)> = buckets
                .iter()
                .map(|(le, counts)| (*le, counts[sec]))
                .collect();
            quantile_from_buckets(q, &cumulative)
        })
        .collect()
}

/// `histogram_quantile` over cumulative `(le, count)` pairs sorted by `le`.
pub fn quantile_from_buckets(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 1e-9 {
        return None;
    }
    let rank = q * total;
    let mut prev = (0.0f64, 0.0f64);
    for &(le, count) in buckets {
        if count >= rank {
            if le.is_infinite() {
                return Some(prev.0);
            }
            let in_bucket = count - prev.1;
            if in_bucket <= 1e-12 {
                return Some(le);
            }
            return Some(prev.0 + (le - prev.0) * ((rank - prev.1) / in_bucket));
        }
        prev = (le, count);
    }
    Some(prev.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves label sets with escapes and empty sets parse, and garbage is refused.
    #[test]
    fn labels_parse() {
        let l = parse_labels(r#"{downstream="payment",le="0.005"}"#).expect("parses");
        assert_eq!(l["downstream"], "payment");
        assert_eq!(l["le"], "0.005");
        assert!(parse_labels("").expect("empty").is_empty());
        assert_eq!(parse_labels(r#"{a="x\"y"}"#).expect("escape")["a"], "x\"y");
        assert!(parse_labels("{a=x}").is_err());
        assert!(parse_labels(r#"{a="x"#).is_err());
    }

    /// Proves counter increases are spread over missed scrapes and a restart is not negative.
    #[test]
    fn counter_rates() {
        let s = Series {
            node: "n1".into(),
            role: "order".into(),
            metric: "requests_total".into(),
            labels: BTreeMap::new(),
            points: vec![(0.5, 10.0), (1.5, 20.0), (3.5, 40.0), (4.5, 5.0)],
        };
        let r = counter_per_second(&s, 5);
        assert_eq!(r, vec![0.0, 10.0, 10.0, 10.0, 5.0]);
    }

    /// Proves the quantile interpolates inside a bucket and handles +Inf and empty seconds.
    #[test]
    fn quantiles() {
        let b = [(0.01, 50.0), (0.1, 100.0), (f64::INFINITY, 100.0)];
        let p50 = quantile_from_buckets(0.5, &b).expect("p50");
        assert!((p50 - 0.01).abs() < 1e-9, "{p50}");
        let p99 = quantile_from_buckets(0.99, &b).expect("p99");
        assert!((p99 - (0.01 + 0.09 * 49.0 / 50.0)).abs() < 1e-9, "{p99}");
        let inf = [(0.01, 0.0), (f64::INFINITY, 10.0)];
        assert_eq!(quantile_from_buckets(0.99, &inf), Some(0.01));
        assert_eq!(quantile_from_buckets(0.99, &[(0.01, 0.0)]), None);
        assert!("+Inf".parse::<f64>().expect("inf").is_infinite());
    }
}
