//! `index.html` of one run: the view model handed to `templates/index.html`.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use minijinja::context;
use serde::Serialize;
use serde_json::Value;

use super::table::{num, Table};
use super::{timeline, Graph, ReportError, TEMPLATE};
use crate::analysis::FaultWindow;
use crate::checks::{RetryLoad, Signals};
use crate::expectation::{ExpectationResult, Outcome};
use crate::rundir::{files, RunData};
use crate::verdict::Results;

#[derive(Serialize)]
struct CheckView {
    name: String,
    validity: String,
    summary: String,
    tables: Vec<Table>,
    details_json: String,
}

#[derive(Serialize)]
struct FaultRow {
    id: String,
    fault: String,
    target: String,
    start: String,
    end: String,
    first: String,
    first_after: String,
    moved: String,
    recovery: String,
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn spec_rows(run: &RunData, faults: &[FaultWindow]) -> Vec<(String, String)> {
    let c = &run.spec.config;
    let mut rows: Vec<(String, String)> = vec![
        ("scenario".into(), c.scenario.clone()),
        (
            "seed".into(),
            c.seed.map_or_else(|| "-".into(), |s| s.to_string()),
        ),
        ("cluster kind".into(), c.cluster.as_str().into()),
        ("nodes".into(), run.spec.node_names.len().to_string()),
    ];
    let injected: Vec<String> = faults
        .iter()
        .map(|w| format!("{} {}", w.id, w.label()))
        .collect();
    let planned = if c.faults.is_empty() {
        c.nemesis.to_string()
    } else {
        let specs: Vec<String> = c.faults.iter().map(ToString::to_string).collect();
        specs.join("; ")
    };
    rows.push((
        "faults".into(),
        format!(
            "{planned} — {} injected{}{}",
            faults.len(),
            if injected.is_empty() { "" } else { ": " },
            injected.join("; ")
        ),
    ));
    let ran = crate::analysis::end_ns(&run.history) as f64 / 1e9;
    rows.push((
        "duration".into(),
        format!(
            "{} s workload; history spans {ran:.1} s",
            c.time_limit.as_secs_f64()
        ),
    ));
    // As spec.json writes it (`20.0`).
    rows.push((
        "rate".into(),
        serde_json::to_string(&c.rate).unwrap_or_default(),
    ));
    rows.push(("concurrency".into(), c.concurrency.to_string()));
    let off: Vec<String> = c
        .switches
        .names()
        .iter()
        .map(|n| n.replace('-', "_"))
        .collect();
    rows.push((
        "protections switched off".into(),
        if off.is_empty() {
            "none".into()
        } else {
            off.join(", ")
        },
    ));
    rows
}

fn all_spec(run: &RunData) -> Vec<(String, String)> {
    serde_json::to_value(&run.spec)
        .ok()
        .and_then(|v| {
            v.as_object()
                .map(|o| o.iter().map(|(k, v)| (k.clone(), text(v))).collect())
        })
        .unwrap_or_default()
}

fn fault_rows(results: &Results, faults: &[FaultWindow]) -> Vec<FaultRow> {
    let signals: BTreeMap<String, crate::checks::signals::FaultSignals> = results
        .check::<Signals>()
        .map(|(_, d)| d.faults.into_iter().map(|f| (f.id.clone(), f)).collect())
        .unwrap_or_default();
    let recovery: BTreeMap<String, Option<f64>> = results
        .check::<RetryLoad>()
        .map(|(_, d)| {
            d.recovery
                .into_iter()
                .map(|r| (r.id, r.recovery_s))
                .collect()
        })
        .unwrap_or_default();
    let secs = |ns: u64| format!("{:.2}", ns as f64 / 1e9);
    faults
        .iter()
        .map(|w| {
            let s = signals.get(&w.id);
            let first = s.and_then(|s| s.first.as_ref());
            let moved: Vec<String> = s
                .map(|s| {
                    s.moved
                        .iter()
                        .map(|m| format!("{} ({})", m.signal, num(m.after_s)))
                        .collect()
                })
                .unwrap_or_default();
            let recovery = match recovery.get(&w.id) {
                Some(None) => "not before the workload ended".to_owned(),
                Some(Some(v)) => num(*v),
                None => "-".to_owned(),
            };
            FaultRow {
                id: w.id.clone(),
                fault: w.fault.clone(),
                target: w.target.clone(),
                start: secs(w.start_ns),
                end: w.end_ns.map(secs).unwrap_or_else(|| "never".into()),
                first: match (s, first) {
                    (None, _) => "no signal data".into(),
                    (Some(_), None) => "none moved".into(),
                    (Some(_), Some(f)) => f.signal.clone(),
                },
                first_after: first.map_or("-".into(), |f| num(f.after_s)),
                moved: if moved.is_empty() {
                    "-".into()
                } else {
                    moved.join(", ")
                },
                recovery,
            }
        })
        .collect()
}

/// Raw files present in the run directory, relative to it.
fn raw_files(dir: &Path, signal_files: &[String]) -> Vec<String> {
    let mut out: Vec<String> = [
        files::SPEC,
        files::HISTORY,
        files::FINAL_STATE,
        files::METRICS,
        files::RESULTS,
        files::HEAL_LEDGER,
        files::LINEARIZABILITY_HTML,
        files::TIMELINE_HTML,
    ]
    .iter()
    .filter(|f| dir.join(f).exists())
    .map(|f| (*f).to_owned())
    .collect();
    out.extend(
        signal_files
            .iter()
            .map(|f| format!("{}/{f}", files::SIGNALS_DIR)),
    );
    let mut logs = Vec::new();
    for node in crate::logs::node_names(dir) {
        let Ok(entries) = fs::read_dir(dir.join(files::NODES_DIR).join(&node)) else {
            continue;
        };
        for e in entries.flatten() {
            if let Some(name) = e.file_name().to_str() {
                logs.push(format!("{}/{node}/{name}", files::NODES_DIR));
            }
        }
    }
    logs.sort();
    out.extend(logs);
    out
}

#[derive(Serialize)]
struct RequirementView {
    check: String,
    expected: String,
    found: String,
    why: String,
    outcome: String,
    class: &'static str,
}

#[derive(Serialize)]
struct ExpectationView {
    outcome: &'static str,
    class: &'static str,
    scenario: String,
    protection: String,
    switched: &'static str,
    claim: String,
    requirements: Vec<RequirementView>,
}

fn outcome_class(o: Outcome) -> &'static str {
    match o {
        Outcome::Held => "valid",
        Outcome::NotHeld => "invalid",
        Outcome::Unknown => "unknown",
    }
}

fn expectation_view(e: &ExpectationResult) -> ExpectationView {
    ExpectationView {
        outcome: e.outcome.as_str(),
        class: outcome_class(e.outcome),
        scenario: e.scenario.clone(),
        protection: e.protection.clone(),
        switched: if e.protection_on { "on" } else { "off" },
        claim: e.claim.clone(),
        requirements: e
            .requirements
            .iter()
            .map(|r| RequirementView {
                check: r.requirement.check.to_string(),
                expected: match &r.requirement.evidence {
                    Some(ev) => format!(
                        "{} with at least {} {}",
                        r.requirement.validity, ev.at_least, ev.what
                    ),
                    None => r.requirement.validity.to_string(),
                },
                found: r.found.map_or("missing".into(), |v| v.to_string()),
                why: r.why.clone(),
                outcome: r.outcome.as_str().to_owned(),
                class: outcome_class(r.outcome),
            })
            .collect(),
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn render_index(
    run: &RunData,
    results: &Results,
    graphs: &[Graph],
    faults: &[FaultWindow],
    timeline_pages: usize,
    total_ops: usize,
    signal_files: &[String],
    other: Option<&RunData>,
) -> Result<String, ReportError> {
    let checks: Vec<CheckView> = results
        .checks
        .iter()
        .map(|c| CheckView {
            name: c.name.to_string(),
            validity: c.validity.to_string(),
            summary: c.summary.clone(),
            tables: crate::checks::tables(c),
            details_json: serde_json::to_string_pretty(&c.details).unwrap_or_default(),
        })
        .collect();
    let paged = timeline_pages * timeline::OPS_PER_PAGE;
    let linearizability = run
        .dir
        .join(files::LINEARIZABILITY_HTML)
        .exists()
        .then_some(files::LINEARIZABILITY_HTML);
    let mut env = super::environment();
    env.add_template("index.html", TEMPLATE)?;
    let html = env.get_template("index.html")?.render(context! {
        run_id => results.run_id,
        verdict => results.validity.as_str(),
        spec_rows => spec_rows(run, faults),
        other_spec => all_spec(run),
        rerun => (!run.spec.rerun.is_empty()).then_some(run.spec.rerun.as_str()),
        notes => results.notes,
        checks => checks,
        faults => fault_rows(results, faults),
        graphs => graphs,
        timeline => files::TIMELINE_HTML,
        timeline_pages => timeline_pages,
        timeline_not_paged => total_ops.saturating_sub(paged),
        files => raw_files(&run.dir, signal_files),
        linearizability => linearizability,
        compared_with => other.map(|o| o.history.header.run_id.clone()),
        expectation => results.expectation.as_ref().map(expectation_view),
    })?;
    Ok(html)
}
