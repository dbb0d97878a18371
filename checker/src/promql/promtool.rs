//! `promtool test rules` files: their input series in the expanding notation (`0+1x10`, `5x3`,
//! `_`, `_x2`, `stale`) turned into a [`Store`], so that the evaluator runs the same tests
//! promtool runs (and the tests can be written back out for promtool with the evaluator's own
//! answers, to cross-check them).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::duration::parse_duration_ms;
use super::parse::{parse, Expr};
use super::store::{Labels, Point, Store, StoredSeries};

/// A `promtool test rules` file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TestFile {
    /// Rule files, relative to the test file.
    pub rule_files: Vec<String>,
    /// Evaluation step of every test.
    #[serde(default = "one_minute")]
    pub evaluation_interval: String,
    /// The tests.
    pub tests: Vec<TestGroup>,
}

fn one_minute() -> String {
    "1m".into()
}

/// One test: input series and what must fire when.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TestGroup {
    /// Its name.
    #[serde(default)]
    pub name: String,
    /// Time between two input samples.
    #[serde(default = "one_minute")]
    pub interval: String,
    /// The series.
    pub input_series: Vec<InputSeries>,
    /// Expected alerts.
    #[serde(default)]
    pub alert_rule_test: Vec<AlertTest>,
}

/// One input series.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InputSeries {
    /// `name{label="value", ...}`.
    pub series: String,
    /// Values in the expanding notation.
    pub values: String,
}

/// The alerts of one name expected at one time.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AlertTest {
    /// Since the test's start.
    pub eval_time: String,
    /// Which alert.
    pub alertname: String,
    /// Every firing alert of that name then.
    #[serde(default)]
    pub exp_alerts: Vec<ExpectedAlert>,
}

/// One expected alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExpectedAlert {
    /// Its labels (without `alertname`).
    #[serde(default)]
    pub exp_labels: BTreeMap<String, String>,
    /// Its annotations.
    #[serde(default)]
    pub exp_annotations: BTreeMap<String, String>,
}

/// Reads a test file.
pub fn load(yaml: &str) -> Result<TestFile, String> {
    serde_yaml::from_str(yaml).map_err(|e| format!("test file: {e}"))
}

/// One element of the expanding notation.
enum Item {
    Value(f64),
    Missing,
    Stale,
}

fn number(s: &str) -> Result<f64, String> {
    match s {
        "Inf" | "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => s.parse().map_err(|_| format!("bad number {s:?}")),
    }
}

/// Expands `values` (promtool's notation) into one item per sample slot.
fn expand(values: &str) -> Result<Vec<Item>, String> {
    let mut out = Vec::new();
    for tok in values.split_whitespace() {
        if tok == "_" {
            out.push(Item::Missing);
            continue;
        }
        if tok == "stale" {
            out.push(Item::Stale);
            continue;
        }
        if let Some(n) = tok.strip_prefix("_x") {
            let n: usize = n.parse().map_err(|_| format!("bad {tok:?}"))?;
            out.extend((0..n).map(|_| Item::Missing));
            continue;
        }
        let Some((head, times)) = tok.rsplit_once('x') else {
            out.push(Item::Value(number(tok)?));
            continue;
        };
        let times: usize = times.parse().map_err(|_| format!("bad {tok:?}"))?;
        // `a+b`, `a-b` or `a`: the sign after the first character that is not an exponent's.
        let split = head
            .char_indices()
            .skip(1)
            .find(|&(i, c)| {
                (c == '+' || c == '-') && !matches!(head.as_bytes()[i - 1], b'e' | b'E')
            })
            .map(|(i, _)| i);
        let (start, step) = match split {
            Some(i) => (number(&head[..i])?, number(&head[i..])?),
            None => (number(head)?, 0.0),
        };
        out.extend((0..=times).map(|k| Item::Value(start + step * k as f64)));
    }
    Ok(out)
}

/// The labels of a series written `name{a="x"}`.
pub fn series_labels(text: &str) -> Result<Labels, String> {
    let Expr::Selector { name, matchers } = parse(text).map_err(|e| e.to_string())? else {
        return Err(format!("{text:?} is not a series"));
    };
    let mut labels = Labels::new();
    if let Some(n) = name {
        labels.insert("__name__".into(), n);
    }
    for m in matchers {
        if m.negated {
            return Err(format!("{text:?}: a series has = labels only"));
        }
        labels.insert(m.name, m.value);
    }
    Ok(labels)
}

impl TestGroup {
    /// Its input series, sample `i` at `i * interval` from 0.
    pub fn store(&self) -> Result<Store, String> {
        let step = parse_duration_ms(&self.interval)?;
        let mut all = Vec::new();
        for s in &self.input_series {
            let labels = series_labels(&s.series)?;
            let points = expand(&s.values)?
                .into_iter()
                .enumerate()
                .filter_map(|(i, item)| {
                    let t_ms = i as i64 * step;
                    match item {
                        Item::Value(v) => Some(Point::at(t_ms, Some(v))),
                        Item::Stale => Some(Point::at(t_ms, None)),
                        Item::Missing => None,
                    }
                })
                .collect();
            all.push(StoredSeries { labels, points });
        }
        Ok(Store::new(all))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves the expanding notation as promtool documents it: `a+bxn` is n+1 samples,
    /// `_x3` three missing slots, `stale` a marker.
    #[test]
    fn expanding_notation() {
        let vals = |s: &str| -> Vec<Option<f64>> {
            expand(s)
                .expect("expands")
                .into_iter()
                .map(|i| match i {
                    Item::Value(v) => Some(v),
                    _ => None,
                })
                .collect()
        };
        assert_eq!(vals("-2+4x3"), [-2.0, 2.0, 6.0, 10.0].map(Some));
        assert_eq!(vals("1-2x4"), [1.0, -1.0, -3.0, -5.0, -7.0].map(Some));
        assert_eq!(vals("1x2"), [1.0, 1.0, 1.0].map(Some));
        assert_eq!(vals("1 _x3 stale"), [Some(1.0), None, None, None, None]);
        assert_eq!(vals("1e3+1e2x1"), [1000.0, 1100.0].map(Some));
        assert!(expand("1+x").is_err());
    }
}
