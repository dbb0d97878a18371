//! The per-run report: `results.json`, `index.html` and the PNG graphs, written into the run
//! directory from what was read out of it.

pub mod png;

use std::fs;
use std::path::{Path, PathBuf};

use minijinja::{context, Environment};
use serde::Serialize;

use crate::analysis;
use crate::history::f;
use crate::rundir::{files, RunData};
use crate::verdict::Results;

/// Why the report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A graph could not be drawn.
    #[error(transparent)]
    Draw(#[from] png::DrawError),
    /// The template failed to render (a defect in the template).
    #[error("rendering index.html: {0}")]
    Template(#[from] minijinja::Error),
}

static TEMPLATE: &str = include_str!("../../templates/index.html");

#[derive(Serialize)]
struct Graph {
    file: &'static str,
    title: &'static str,
}

#[derive(Serialize)]
struct FaultRow {
    id: String,
    fault: String,
    target: String,
    start: String,
    end: String,
}

#[derive(Serialize)]
struct CheckView {
    name: String,
    validity: String,
    summary: String,
    violations: Vec<serde_json::Value>,
    details_json: String,
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    fs::write(path, bytes).map_err(|source| ReportError::Io {
        path: path.to_owned(),
        source,
    })
}

fn spec_rows(spec: &serde_json::Value) -> Vec<(String, String)> {
    let keys = [
        "scenario",
        "seed",
        "cluster",
        "nodes",
        "nemesis",
        "time_limit_s",
        "rate",
        "concurrency",
    ];
    keys.iter()
        .filter_map(|k| {
            spec.get(*k).map(|v| {
                let text = match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                ((*k).to_owned(), text)
            })
        })
        .collect()
}

/// Writes `results.json`, the graphs and `index.html` into the run directory.
pub fn write_report(run: &RunData, results: &Results) -> Result<(), ReportError> {
    let dir = &run.dir;
    let json = serde_json::to_vec_pretty(results).unwrap_or_default();
    write(&dir.join(files::RESULTS), &json)?;

    let faults = analysis::fault_windows(&run.history);
    let t = analysis::throughput(&run.history, Some(f::PLACE_ORDER));
    png::throughput(
        &dir.join(files::THROUGHPUT_PNG),
        "Order placement throughput by outcome",
        &t,
        &faults,
    )?;
    let graphs = vec![Graph {
        file: files::THROUGHPUT_PNG,
        title: "Order placement throughput by outcome, faults shaded",
    }];

    let secs = |ns: u64| format!("{:.2}", ns as f64 / 1e9);
    let fault_rows: Vec<FaultRow> = faults
        .iter()
        .map(|w| FaultRow {
            id: w.id.clone(),
            fault: w.fault.clone(),
            target: w.target.clone(),
            start: secs(w.start_ns),
            end: w.end_ns.map(secs).unwrap_or_else(|| "never".into()),
        })
        .collect();
    let checks: Vec<CheckView> = results
        .checks
        .iter()
        .map(|c| CheckView {
            name: c.name.clone(),
            validity: c.validity.to_string(),
            summary: c.summary.clone(),
            violations: c
                .details
                .get("violations")
                .and_then(|v| v.as_array())
                .cloned()
                .unwrap_or_default(),
            details_json: serde_json::to_string_pretty(&c.details).unwrap_or_default(),
        })
        .collect();
    let mut raw: Vec<String> = [
        files::SPEC,
        files::HISTORY,
        files::FINAL_STATE,
        files::METRICS,
        files::RESULTS,
    ]
    .iter()
    .filter(|f| dir.join(f).exists())
    .map(|f| (*f).to_owned())
    .collect();
    raw.extend(node_logs(dir));

    let mut env = Environment::new();
    env.add_template("index.html", TEMPLATE)?;
    let html = env.get_template("index.html")?.render(context! {
        run_id => results.run_id,
        verdict => results.validity.as_str(),
        spec_rows => spec_rows(&run.spec),
        rerun => run.spec.get("rerun").and_then(|v| v.as_str()),
        checks => checks,
        faults => fault_rows,
        graphs => graphs,
        files => raw,
    })?;
    write(&dir.join(files::INDEX), html.as_bytes())
}

/// `nodes/<node>/<role>.log` paths relative to the run directory, sorted.
fn node_logs(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(nodes) = fs::read_dir(dir.join(files::NODES_DIR)) else {
        return out;
    };
    for node in nodes.flatten() {
        let Ok(logs) = fs::read_dir(node.path()) else {
            continue;
        };
        for log in logs.flatten() {
            if let (Some(n), Some(l)) = (node.file_name().to_str(), log.file_name().to_str()) {
                out.push(format!("{}/{n}/{l}", files::NODES_DIR));
            }
        }
    }
    out.sort();
    out
}
