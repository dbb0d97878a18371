//! The alerts check: evaluates the run's alerting rules (`alerts.yml`, copied into the run
//! directory by the harness) over `metrics.csv` with the checker's own PromQL evaluator
//! ([`crate::promql`]), every second from the first scrape to the last, and lists every alert
//! with the spans it fired. Where a Prometheus ran in the run (`prometheus/alerts.json`) it
//! compares the two ([`compare`]): a stretch longer than one evaluation interval plus one scrape
//! interval plus Prometheus's scrape timeout during which one of them fired and the other did
//! not (the harness's scraper and Prometheus sample at different instants, and Prometheus
//! sees a failed scrape only when it timed out) makes the check unknown, and both are shown.
//! Per fault it names the first signal that moved and the first alert that fired.
//! Informational otherwise: firing alerts do not make a run invalid.

use std::collections::BTreeMap;

use formats::alerts::PrometheusRun;
use serde::{Deserialize, Serialize};

mod compare;

pub use compare::Comparison;

use super::signals::{attribute, run_signals};
use super::Params;
use crate::analysis;
use crate::check::{Check, Verdict};
use crate::promql::rules;
use crate::promql::scraped::Readable;
use crate::promql::store::Store;
use crate::report::table::{num, opt_num, Table};
use crate::rundir::{files, RunData};
use crate::verdict::{CheckId, Validity};

/// The checker's evaluation step.
pub const EVALUATION_INTERVAL_MS: i64 = 1000;
/// The harness's scrape interval (metrics.csv).
pub const SCRAPE_INTERVAL_MS: i64 = 1000;

/// One rule, as the report lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleInfo {
    /// `alertname`.
    pub name: String,
    /// Its `severity` label.
    pub severity: String,
    /// Its other labels, `k=v` joined.
    pub labels: String,
    /// `for`, seconds.
    pub for_s: f64,
    /// `keep_firing_for`, seconds (0: none).
    #[serde(default)]
    pub keep_firing_for_s: f64,
    /// The expression.
    pub expr: String,
}

/// One span an alert fired, in seconds since the run started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Span {
    /// `alertname`.
    pub alert: String,
    /// Its labels without `alertname`, `k=v` joined.
    pub labels: String,
    /// Its severity label.
    pub severity: String,
    /// First evaluation firing.
    pub from_s: f64,
    /// Last evaluation firing.
    pub to_s: f64,
    /// Still firing at the last evaluation.
    pub open: bool,
}

/// What the alerts did during one fault, next to the signals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultAlerts {
    /// Fault id.
    pub id: String,
    /// `kind target`.
    pub fault: String,
    /// Start, seconds since the run started.
    pub start_s: f64,
    /// Heal.
    pub end_s: Option<f64>,
    /// The first seam signal past its threshold, and how long after the start.
    pub first_signal: Option<(String, f64)>,
    /// The first alert that began firing (from the start until the signals' grace after the
    /// heal), and how long after the start.
    pub first_alert: Option<(String, f64)>,
    /// Every alert that began firing then, with its delay.
    pub alerts: Vec<(String, f64)>,
}

/// What the check found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Details {
    /// The rules evaluated.
    pub rules: Vec<RuleInfo>,
    /// The checker's evaluation step, seconds.
    pub evaluation_interval_s: f64,
    /// Every span the checker's evaluation fired.
    pub ours: Vec<Span>,
    /// Whether a Prometheus ran in the run, and if not why.
    pub prometheus_ran: bool,
    /// Why it did not.
    pub prometheus_skipped: Option<String>,
    /// Every span Prometheus fired.
    pub prometheus: Vec<Span>,
    /// The comparison, label set by label set (empty without Prometheus).
    pub comparisons: Vec<Comparison>,
    /// The longest stretch where exactly one of them fired that still agrees, seconds.
    pub tolerance_s: f64,
    /// Per fault that started.
    pub faults: Vec<FaultAlerts>,
    /// Where the rules came from: the run directory's `alerts.yml`, or, in a run directory
    /// without one, the rules the checker was built with.
    #[serde(default)]
    pub rules_from: String,
    /// Which samples the checker's side of the comparison evaluated the rules over.
    #[serde(default)]
    pub compared_over: String,
}

/// The check.
pub struct Alerts;

impl Check for Alerts {
    const ID: CheckId = CheckId::Alerts;
    type Details = Details;

    fn run(run: &RunData, p: &Params) -> Verdict<Details> {
        check(run, p)
    }

    fn tables(d: &Details) -> Vec<Table> {
        let span = |s: &(f64, f64)| format!("{}–{} s", num(s.0), num(s.1));
        vec![
            Table::of(
                "Signals and alerts per fault",
                &[
                    "fault",
                    "start (s)",
                    "heal (s)",
                    "first signal",
                    "first alert",
                    "alerts",
                ],
                &d.faults,
                0,
                |f| {
                    let at = |x: &Option<(String, f64)>| {
                        x.as_ref()
                            .map_or("-".into(), |(n, s)| format!("{n} after {} s", num(*s)))
                    };
                    let all: Vec<String> = f
                        .alerts
                        .iter()
                        .map(|(n, s)| format!("{n} +{} s", num(*s)))
                        .collect();
                    vec![
                        format!("{} {}", f.id, f.fault),
                        num(f.start_s),
                        opt_num(f.end_s),
                        at(&f.first_signal),
                        at(&f.first_alert),
                        all.join(", "),
                    ]
                },
            ),
            Table::of(
                "Alerts fired (checker's evaluation of alerts.yml over metrics.csv)",
                &["alert", "labels", "severity", "from (s)", "to (s)"],
                &d.ours,
                0,
                span_row,
            ),
            Table::of(
                "Alerts fired (the run's Prometheus)",
                &["alert", "labels", "severity", "from (s)", "to (s)"],
                &d.prometheus,
                0,
                span_row,
            ),
            Table::of(
                &format!(
                    "Checker and Prometheus compared (the checker over {})",
                    d.compared_over
                ),
                &[
                    "alert",
                    "labels",
                    "checker",
                    "Prometheus",
                    "longest disagreement (s)",
                    "agree",
                ],
                &d.comparisons,
                0,
                |c| {
                    let spans = |v: &[(f64, f64)]| {
                        if v.is_empty() {
                            "-".into()
                        } else {
                            v.iter().map(span).collect::<Vec<_>>().join(", ")
                        }
                    };
                    vec![
                        c.alert.clone(),
                        c.labels.clone(),
                        spans(&c.ours),
                        spans(&c.prometheus),
                        num(c.longest_disagreement_s),
                        c.agree.to_string(),
                    ]
                },
            ),
            Table::of(
                "Rules",
                &[
                    "alert",
                    "severity",
                    "labels",
                    "for (s)",
                    "keep firing for (s)",
                    "expression",
                ],
                &d.rules,
                0,
                |r| {
                    vec![
                        r.name.clone(),
                        r.severity.clone(),
                        r.labels.clone(),
                        num(r.for_s),
                        num(r.keep_firing_for_s),
                        r.expr.clone(),
                    ]
                },
            ),
        ]
    }
}

fn span_row(s: &Span) -> Vec<String> {
    vec![
        s.alert.clone(),
        s.labels.clone(),
        s.severity.clone(),
        num(s.from_s),
        if s.open {
            format!("{} (still firing)", num(s.to_s))
        } else {
            num(s.to_s)
        },
    ]
}

fn joined(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .filter(|(k, _)| *k != "alertname")
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn to_span(
    labels: &BTreeMap<String, String>,
    from_ms: i64,
    to_ms: i64,
    open: bool,
    start_ms: i64,
) -> Span {
    Span {
        alert: labels.get("alertname").cloned().unwrap_or_default(),
        labels: joined(labels),
        severity: labels.get("severity").cloned().unwrap_or_default(),
        from_s: (from_ms - start_ms) as f64 / 1000.0,
        to_s: (to_ms - start_ms) as f64 / 1000.0,
        open,
    }
}

/// Reads `prometheus/alerts.json`, if the harness wrote one.
fn prometheus_run(run: &RunData) -> Result<Option<PrometheusRun>, String> {
    let path = run.dir.join(files::PROMETHEUS_ALERTS);
    if !path.exists() {
        return Ok(None);
    }
    crate::rundir::read_json(&path)
        .map(Some)
        .map_err(|e| e.to_string())
}

fn unknown(summary: String, details: Details) -> Verdict<Details> {
    Verdict::new(Validity::Unknown, summary, details)
}

/// Runs the check.
pub fn check(run: &RunData, p: &Params) -> Verdict<Details> {
    let mut details = Details {
        rules: Vec::new(),
        evaluation_interval_s: EVALUATION_INTERVAL_MS as f64 / 1000.0,
        ours: Vec::new(),
        prometheus_ran: false,
        prometheus_skipped: None,
        prometheus: Vec::new(),
        comparisons: Vec::new(),
        tolerance_s: 0.0,
        faults: Vec::new(),
        rules_from: files::ALERT_RULES.into(),
        compared_over: String::new(),
    };
    let rules_path = run.dir.join(files::ALERT_RULES);
    let text = match std::fs::read_to_string(&rules_path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            details.rules_from = format!(
                "the shipped sut/prometheus/alerts.yml (the run directory has no {})",
                files::ALERT_RULES
            );
            rules::SHIPPED.to_owned()
        }
        Err(e) => return unknown(format!("{}: {e}", files::ALERT_RULES), details),
    };
    let rules = match rules::load(&text) {
        Ok(r) => r,
        Err(e) => return unknown(format!("{}: {e}", files::ALERT_RULES), details),
    };
    details.rules = rules
        .iter()
        .map(|r| {
            let mut labels = r.labels.clone();
            let severity = labels.remove("severity").unwrap_or_default();
            RuleInfo {
                name: r.name.clone(),
                severity,
                labels: joined(&labels),
                for_s: r.for_ms as f64 / 1000.0,
                keep_firing_for_s: r.keep_firing_for_ms as f64 / 1000.0,
                expr: r.expr_text.clone(),
            }
        })
        .collect();
    let Some(metrics) = run.metrics.as_ref() else {
        return unknown(
            "metrics.csv is missing: cannot evaluate the alerting rules".into(),
            details,
        );
    };
    let start_ms = run.history.header.started_unix_ms as i64;
    let store = Store::from_metrics(metrics, start_ms);
    let Some((from, to)) = store.span_ms() else {
        return unknown("metrics.csv has no samples".into(), details);
    };
    let rules_again = rules.clone();
    let ours = match rules::firings(rules, &store, from, to, EVALUATION_INTERVAL_MS) {
        Ok(f) => f,
        Err(e) => return unknown(format!("evaluating the rules: {e}"), details),
    };
    details.ours = ours
        .iter()
        .map(|f| to_span(&f.labels, f.from_ms, f.to_ms, f.open, start_ms))
        .collect();
    details.faults = per_fault(run, p, &details.ours);
    let prom = match prometheus_run(run) {
        Ok(p) => p,
        Err(e) => return unknown(format!("{}: {e}", files::PROMETHEUS_ALERTS), details),
    };
    let fired = summary_of(&details.ours);
    let Some(prom) = prom.filter(|p| p.ran) else {
        details.prometheus_skipped = Some(
            prometheus_run(run)
                .ok()
                .flatten()
                .and_then(|p| p.skipped)
                .unwrap_or_else(|| "no prometheus/alerts.json".into()),
        );
        return Verdict::new(
            Validity::Valid,
            format!(
                "{fired} (Prometheus did not run: {})",
                details.prometheus_skipped.as_deref().unwrap_or("")
            ),
            details,
        );
    };
    details.prometheus_ran = true;
    if !prom.errors.is_empty() {
        return unknown(
            format!(
                "{fired}; Prometheus's alerts could not be read: {}",
                prom.errors.join("; ")
            ),
            details,
        );
    }
    details.prometheus = prom
        .alerts
        .iter()
        .map(|f| to_span(&f.labels, f.from_unix_ms, f.to_unix_ms, false, start_ms))
        .collect();
    let window = (
        prom.started_unix_ms.unwrap_or(from).max(from),
        prom.ended_unix_ms.unwrap_or(to).min(to),
    );
    let (compared, tolerance_ms, over) =
        match against_prometheus(run, &rules_again, &ours, &prom, window) {
            Ok(c) => c,
            Err(e) => return unknown(format!("{fired}; {e}"), details),
        };
    details.compared_over = over;
    details.tolerance_s = tolerance_ms as f64 / 1000.0;
    let frame = compare::Frame {
        window,
        tolerance_ms,
        step_ms: EVALUATION_INTERVAL_MS,
        start_ms,
    };
    details.comparisons = compare::closest(
        compared
            .iter()
            .map(|ours| compare::compare(ours, &prom, frame))
            .collect(),
    );
    let disagree = details.comparisons.iter().filter(|c| !c.agree).count();
    if disagree > 0 {
        return unknown(
            format!(
                "{fired}; Prometheus disagrees on {disagree} of {} alerts (for longer than {} s)",
                details.comparisons.len(),
                num(details.tolerance_s)
            ),
            details,
        );
    }
    let n = details.comparisons.len();
    Verdict::new(
        Validity::Valid,
        format!("{fired}; Prometheus agrees on all {n} alerts"),
        details,
    )
}

/// The checker's firings to set against Prometheus's, the tolerance, and what they were
/// evaluated over. Over Prometheus's own samples (`prometheus/samples.jsonl`) at its own
/// evaluation instants, the two see the same data at the same moments, so they may differ only
/// by one evaluation (a scrape stored a moment after an evaluation read). A run directory
/// without the samples (written before they were exported) falls back to `ours`, the
/// evaluation over `metrics.csv`: the
/// two scrapers sample up to one scrape interval apart and a failed scrape counts only once its
/// timeout ran out, so the tolerance adds both.
fn against_prometheus(
    run: &RunData,
    rules: &[rules::AlertRule],
    ours: &[rules::Firing],
    prom: &PrometheusRun,
    window: (i64, i64),
) -> Result<(Vec<Vec<rules::Firing>>, i64, String), String> {
    let step_ms = (prom.evaluation_interval_ms as i64).max(1);
    let Some(rel) = prom.samples.as_deref() else {
        let tolerance_ms = step_ms.max(EVALUATION_INTERVAL_MS)
            + SCRAPE_INTERVAL_MS
            + prom.scrape_timeout_ms.min(SCRAPE_INTERVAL_MS as u64) as i64;
        return Ok((
            vec![ours.to_vec()],
            tolerance_ms,
            "metrics.csv (the run directory has no Prometheus samples)".into(),
        ));
    };
    let path = run.dir.join(rel);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{rel}: {e}"))?;
    let mut series = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let s: formats::alerts::PromSeries =
            serde_json::from_str(line).map_err(|e| format!("{rel} line {}: {e}", i + 1))?;
        series.push(s);
    }
    let phase = prom.evaluation_phase_ms.unwrap_or(0).rem_euclid(step_ms);
    let first = window.0 + (phase - window.0).rem_euclid(step_ms);
    let mut candidates = Vec::new();
    for readable in [Readable::AfterScrape, Readable::AtTimestamp] {
        let store = Store::from_prometheus(&series, readable);
        candidates.push(
            rules::firings(rules.to_vec(), &store, first, window.1, step_ms)
                .map_err(|e| format!("evaluating the rules over {rel}: {e}"))?,
        );
    }
    Ok((
        candidates,
        step_ms,
        format!(
            "{rel} (Prometheus's own samples at its evaluation instants, each sample read once \
             its scrape ended or as soon as stamped, since a busy Prometheus evaluates late: \
             per alert the closer of the two)"
        ),
    ))
}

fn summary_of(spans: &[Span]) -> String {
    if spans.is_empty() {
        return "no alert fired".into();
    }
    let first: Vec<String> = spans
        .iter()
        .take(6)
        .map(|s| format!("{} at {} s", s.alert, num(s.from_s)))
        .collect();
    format!(
        "{} alert spans fired: {}{}",
        spans.len(),
        first.join(", "),
        if spans.len() > 6 { ", ..." } else { "" }
    )
}

/// `alert{labels}` without the severity and the target's `instance` and `job`.
pub fn short_name(s: &Span) -> String {
    let labels: Vec<&str> = s
        .labels
        .split(',')
        .filter(|l| {
            !l.is_empty()
                && !l.starts_with("severity=")
                && !l.starts_with("instance=")
                && !l.starts_with("job=")
        })
        .collect();
    if labels.is_empty() {
        s.alert.clone()
    } else {
        format!("{}{{{}}}", s.alert, labels.join(","))
    }
}

/// The first signal and the first alerts of each fault that started.
fn per_fault(run: &RunData, p: &Params, spans: &[Span]) -> Vec<FaultAlerts> {
    let windows: Vec<_> = analysis::fault_windows(&run.history)
        .into_iter()
        .filter(|w| w.start_error.is_none())
        .collect();
    let signals = run_signals(run, &p.signals, &p.budget);
    windows
        .iter()
        .map(|w| {
            let start_s = w.start_ns as f64 / 1e9;
            let end_s = w.end_ns.map(|e| e as f64 / 1e9);
            let until = end_s.map_or(f64::INFINITY, |e| e + p.signals.grace_s as f64);
            let first_signal = signals
                .as_ref()
                .and_then(|s| attribute(w, s, &p.signals).first)
                .map(|m| (m.signal, m.after_s));
            let mut alerts: Vec<(String, f64)> = spans
                .iter()
                .filter(|s| s.from_s >= start_s.floor() && s.from_s <= until)
                .map(|s| (short_name(s), (s.from_s - start_s).max(0.0)))
                .collect();
            alerts.sort_by(|a, b| a.1.total_cmp(&b.1));
            FaultAlerts {
                id: w.id.clone(),
                fault: w.label(),
                start_s,
                end_s,
                first_signal,
                first_alert: alerts.first().cloned(),
                alerts,
            }
        })
        .collect()
}
