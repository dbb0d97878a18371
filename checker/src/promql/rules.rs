//! Alerting rules (Prometheus's rule-file format, read with a YAML parser) and their evaluation
//! over time with `for:` and `keep_firing_for:`: an alert is pending from the first evaluation
//! that returns its label set and firing once it has been returned for `for`; a pending alert
//! ends at the first evaluation that does not return it, a firing one too unless the rule keeps
//! it firing: then it goes on firing until `keep_firing_for` has passed since the first
//! evaluation that did not return it (returned again in between, it goes on as if never gone),
//! as Prometheus 2.42 does. Labels are the sample's (without `__name__`), then the rule's, then
//! `alertname`; annotations expand `{{ $labels.<name> }}` and `{{ $value }}`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::duration::parse_duration_ms;
use super::eval::{eval, EvalError, Value};
use super::parse::{parse, Expr};
use super::store::{Labels, Store};

/// The pipeline's alerting rules as shipped (`sut/prometheus/alerts.yml`), for a run directory
/// written before the harness copied them into it (no `alerts.yml`).
pub const SHIPPED: &str = include_str!("../../../sut/prometheus/alerts.yml");

/// A rule file as Prometheus reads it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    /// Rule groups.
    pub groups: Vec<GroupSpec>,
}

/// One group.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSpec {
    /// Its name.
    pub name: String,
    /// Its evaluation interval, if it sets one.
    #[serde(default)]
    pub interval: Option<String>,
    /// Its rules.
    pub rules: Vec<RuleSpec>,
}

/// One rule as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Alert name (alerting rules).
    #[serde(default)]
    pub alert: Option<String>,
    /// Recorded name (recording rules; not supported).
    #[serde(default)]
    pub record: Option<String>,
    /// The PromQL expression.
    pub expr: String,
    /// How long the expression must hold before the alert fires.
    #[serde(default, rename = "for")]
    pub for_: Option<String>,
    /// How long a firing alert goes on firing after its expression stopped returning it.
    #[serde(default)]
    pub keep_firing_for: Option<String>,
    /// Labels added to the alert.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// One alerting rule, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRule {
    /// `alertname`.
    pub name: String,
    /// The expression as written.
    pub expr_text: String,
    /// Parsed.
    pub expr: Expr,
    /// `for`, in milliseconds.
    pub for_ms: i64,
    /// `keep_firing_for`, in milliseconds (0: none).
    pub keep_firing_for_ms: i64,
    /// Labels added to the alert.
    pub labels: BTreeMap<String, String>,
    /// Annotation templates.
    pub annotations: BTreeMap<String, String>,
}

/// Why a rule file could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// Not YAML of the rule-file shape.
    #[error("rule file: {0}")]
    Yaml(String),
    /// A rule the evaluator cannot take.
    #[error("rule {rule}: {message}")]
    Rule {
        /// Its name.
        rule: String,
        /// Why.
        message: String,
    },
}

/// The alerting rules of a rule file, in file order.
pub fn load(yaml: &str) -> Result<Vec<AlertRule>, RuleError> {
    let file: RuleFile = serde_yaml::from_str(yaml).map_err(|e| RuleError::Yaml(e.to_string()))?;
    let mut out = Vec::new();
    for g in file.groups {
        for r in g.rules {
            let name = r.alert.clone().or(r.record.clone()).unwrap_or_default();
            let bad = |message: String| RuleError::Rule {
                rule: name.clone(),
                message,
            };
            if r.record.is_some() || r.alert.is_none() {
                return Err(bad("recording rules are not supported".into()));
            }
            let expr = parse(&r.expr).map_err(|e| bad(e.to_string()))?;
            let for_ms = match &r.for_ {
                Some(f) => parse_duration_ms(f).map_err(bad)?,
                None => 0,
            };
            let keep_firing_for_ms = match &r.keep_firing_for {
                Some(f) => parse_duration_ms(f).map_err(bad)?,
                None => 0,
            };
            for t in r.annotations.values().chain(r.labels.values()) {
                check_template(t).map_err(bad)?;
            }
            out.push(AlertRule {
                name: name.clone(),
                expr_text: r.expr.trim().to_owned(),
                expr,
                for_ms,
                keep_firing_for_ms,
                labels: r.labels,
                annotations: r.annotations,
            });
        }
    }
    Ok(out)
}

/// The template actions the evaluator expands: `{{ $labels.<name> }}` and `{{ $value }}`.
fn action(inner: &str) -> Option<Action<'_>> {
    let inner = inner.trim();
    if inner == "$value" {
        return Some(Action::Value);
    }
    inner
        .strip_prefix("$labels.")
        .filter(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .map(Action::Label)
}

enum Action<'a> {
    Value,
    Label(&'a str),
}

fn check_template(t: &str) -> Result<(), String> {
    expand(t, &Labels::new(), 0.0).map(|_| ())
}

/// Expands a template like Prometheus's text templates do for these two actions (a missing
/// label reads `<no value>`, as Go's templates print it).
pub fn expand(t: &str, labels: &Labels, value: f64) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = t;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let close = after
            .find("}}")
            .ok_or_else(|| format!("template {t:?}: unclosed {{{{"))?;
        match action(&after[..close]) {
            Some(Action::Value) => out.push_str(&format_value(value)),
            Some(Action::Label(l)) => {
                out.push_str(labels.get(l).map(String::as_str).unwrap_or("<no value>"))
            }
            None => {
                return Err(format!(
                "template {t:?}: only {{{{ $labels.<name> }}}} and {{{{ $value }}}} are supported"
            ))
            }
        }
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A float as Go's `%v` prints it for the common cases (integers without a fraction).
fn format_value(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e21 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// An alert at one evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActiveAlert {
    /// Its labels, `alertname` included.
    pub labels: BTreeMap<String, String>,
    /// Its annotations, expanded.
    pub annotations: BTreeMap<String, String>,
    /// When it became active (pending), milliseconds.
    pub active_at_ms: i64,
    /// Firing (held for `for`) rather than pending.
    pub firing: bool,
    /// The expression's value.
    pub value: f64,
}

/// An active alert between evaluations.
#[derive(Debug, Clone)]
struct Held {
    /// When it became active.
    since: i64,
    /// The first evaluation that no longer returned it while it was firing.
    keep_since: Option<i64>,
    /// Whether it fired at the evaluation that last returned or kept it.
    firing: bool,
    /// What it showed last.
    annotations: BTreeMap<String, String>,
    value: f64,
}

/// Rules with their pending and firing alerts, evaluated one instant after the other.
#[derive(Debug, Clone)]
pub struct Evaluator {
    rules: Vec<AlertRule>,
    /// Per rule: label set → its state.
    active: Vec<BTreeMap<Labels, Held>>,
}

impl Evaluator {
    /// An evaluator of `rules`, nothing active.
    pub fn new(rules: Vec<AlertRule>) -> Evaluator {
        let active = vec![BTreeMap::new(); rules.len()];
        Evaluator { rules, active }
    }

    /// The rules.
    pub fn rules(&self) -> &[AlertRule] {
        &self.rules
    }

    /// Evaluates every rule at `t` and returns every active alert (pending and firing).
    pub fn step(&mut self, store: &Store, t: i64) -> Result<Vec<ActiveAlert>, EvalError> {
        let mut out = Vec::new();
        for (rule, active) in self.rules.iter().zip(self.active.iter_mut()) {
            let samples = match eval(store, &rule.expr, t)? {
                Value::Vector(v) => v,
                Value::Scalar(_) => {
                    return Err(EvalError(format!(
                        "rule {}: the expression is a number, not a vector",
                        rule.name
                    )))
                }
            };
            let mut now: BTreeMap<Labels, Held> = BTreeMap::new();
            for s in samples {
                let mut labels = s.labels.clone();
                labels.remove("__name__");
                for (k, v) in &rule.labels {
                    let v = expand(v, &s.labels, s.value).map_err(EvalError)?;
                    labels.insert(k.clone(), v);
                }
                labels.insert("alertname".into(), rule.name.clone());
                let since = active.get(&labels).map_or(t, |h| h.since);
                let mut annotations = BTreeMap::new();
                for (k, v) in &rule.annotations {
                    let v = expand(v, &s.labels, s.value).map_err(EvalError)?;
                    annotations.insert(k.clone(), v);
                }
                let held = Held {
                    since,
                    keep_since: None,
                    firing: t - since >= rule.for_ms,
                    annotations,
                    value: s.value,
                };
                now.insert(labels, held);
            }
            // Firing alerts the expression no longer returns, kept firing for a while.
            for (labels, mut held) in std::mem::take(active) {
                if now.contains_key(&labels) || !held.firing || rule.keep_firing_for_ms <= 0 {
                    continue;
                }
                let keep_since = *held.keep_since.get_or_insert(t);
                if t - keep_since < rule.keep_firing_for_ms {
                    now.insert(labels, held);
                }
            }
            for (labels, h) in &now {
                out.push(ActiveAlert {
                    labels: labels.clone(),
                    annotations: h.annotations.clone(),
                    active_at_ms: h.since,
                    firing: h.firing,
                    value: h.value,
                });
            }
            *active = now;
        }
        Ok(out)
    }
}

/// One span during which an alert (one label set) was firing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Firing {
    /// Its labels, `alertname` included.
    pub labels: BTreeMap<String, String>,
    /// First evaluation at which it fired, milliseconds.
    pub from_ms: i64,
    /// Last evaluation at which it fired.
    pub to_ms: i64,
    /// Whether it still fired at the last evaluation.
    pub open: bool,
}

/// Evaluates `rules` every `step_ms` from `from_ms` to `to_ms` (both included) and returns every
/// firing span, in the order they began.
pub fn firings(
    rules: Vec<AlertRule>,
    store: &Store,
    from_ms: i64,
    to_ms: i64,
    step_ms: i64,
) -> Result<Vec<Firing>, EvalError> {
    assert!(step_ms > 0, "an evaluation step");
    let mut ev = Evaluator::new(rules);
    let mut open: BTreeMap<Labels, (i64, i64)> = BTreeMap::new();
    let mut done: Vec<Firing> = Vec::new();
    let mut t = from_ms;
    while t <= to_ms {
        let firing: BTreeMap<Labels, ()> = ev
            .step(store, t)?
            .into_iter()
            .filter(|a| a.firing)
            .map(|a| (a.labels, ()))
            .collect();
        let ended: Vec<Labels> = open
            .keys()
            .filter(|l| !firing.contains_key(*l))
            .cloned()
            .collect();
        for l in ended {
            if let Some((from, last)) = open.remove(&l) {
                done.push(Firing {
                    labels: l,
                    from_ms: from,
                    to_ms: last,
                    open: false,
                });
            }
        }
        for l in firing.into_keys() {
            open.entry(l).and_modify(|e| e.1 = t).or_insert((t, t));
        }
        t += step_ms;
    }
    done.extend(open.into_iter().map(|(labels, (from, last))| Firing {
        labels,
        from_ms: from,
        to_ms: last,
        open: true,
    }));
    done.sort_by(|a, b| a.from_ms.cmp(&b.from_ms).then(a.labels.cmp(&b.labels)));
    Ok(done)
}
