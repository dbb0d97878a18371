//! The per-run report, written into the run directory from what was read out of it:
//! `results.json`, the PNG graphs, the paged timeline, per-signal CSVs and `index.html`; and the
//! runs index (`reports/index.html`, [`write_runs_index`]).

pub mod export;
mod index;
pub mod plot_alerts;
pub mod plot_goodput;
pub mod plot_metrics;
pub mod plot_ops;
pub mod png;
pub mod runs_index;
pub mod suite;
pub mod table;
pub mod timeline;

use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

pub use runs_index::write_runs_index;

use index::render_index;

use crate::analysis::{self, seams};
use crate::checks::{Checked, Params};
use crate::rundir::{files, RunData};

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
    #[error("rendering html: {0}")]
    Template(#[from] minijinja::Error),
}

static TEMPLATE: &str = include_str!("../../templates/index.html");

/// A graph the report wrote.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Graph {
    /// File name in the run directory.
    pub file: &'static str,
    /// What it shows.
    pub title: &'static str,
    /// How to read it.
    pub caption: &'static str,
    /// Size in pixels.
    pub width: u32,
    /// Size in pixels.
    pub height: u32,
}

/// What [`write_report`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    /// Every PNG with its size.
    pub graphs: Vec<Graph>,
    /// Timeline pages.
    pub timeline_pages: Vec<String>,
    /// Files under `signals/`.
    pub signal_files: Vec<String>,
}

/// A template environment whose HTML escaping leaves `/` alone, so paths and links read as
/// they are (`nodes/n1/store.log:3`), while `<`, `>`, `&` and quotes are escaped.
pub(crate) fn environment() -> minijinja::Environment<'static> {
    let mut env = minijinja::Environment::new();
    env.set_formatter(|out, state, value| {
        let plain = state.auto_escape() == minijinja::AutoEscape::Html
            && !value.is_safe()
            && !value.is_undefined()
            && !value.is_none();
        if plain {
            out.write_str(&timeline::escape(&value.to_string()))
                .map_err(|_| {
                    minijinja::Error::new(minijinja::ErrorKind::WriteFailure, "writing html")
                })
        } else {
            minijinja::escape_formatter(out, state, value)
        }
    });
    env
}

pub(crate) fn write(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    fs::write(path, bytes).map_err(|source| ReportError::Io {
        path: path.to_owned(),
        source,
    })
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ReportError + '_ {
    move |source| ReportError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Writes `results.json`, the pages the checks rendered, the graphs, the timeline, the signal
/// CSVs and `index.html`, all drawn with the `params` the checks ran with. With `other`, the
/// retry-load graph draws both runs (e.g. the same scenario with and without the retry budget).
pub fn write_report(
    run: &RunData,
    checked: &Checked,
    params: &Params,
    other: Option<&RunData>,
) -> Result<Written, ReportError> {
    let dir = &run.dir;
    let results = &checked.results;
    let json = serde_json::to_vec_pretty(results).unwrap_or_default();
    write(&dir.join(files::RESULTS), &json)?;
    for page in &checked.pages {
        write(&dir.join(page.file), page.html.as_bytes())?;
    }
    let pairs = analysis::pairs(&run.history);
    let faults = analysis::fault_windows(&run.history);
    let mut graphs = draw_graphs(run, other, &pairs, &faults, params)?;
    graphs.extend(goodput_graph(run, other, &faults, params)?);
    let alerts = results
        .check::<crate::checks::Alerts>()
        .map(|(_, d)| d)
        .filter(|d| !d.rules.is_empty());
    let metrics_end = run.metrics.as_ref().map_or(0.0, |m| m.end_s);
    let alerts_end = (analysis::end_ns(&run.history) as f64 / 1e9).max(metrics_end);
    let dims = plot_alerts::draw(
        &dir.join(files::ALERTS_PNG),
        alerts.as_ref(),
        &faults,
        alerts_end,
    )?;
    graphs.push(graph(
        files::ALERTS_PNG,
        "Alerts",
        "One lane per alert of alerts.yml that fired: the thick bar where the checker's evaluation over metrics.csv fired it, the thin bar where the run's Prometheus did. Shaded bands are fault periods.",
        dims,
    ));
    let end_ns = analysis::end_ns(&run.history);
    let timeline_pages =
        timeline::write_pages(dir, &pairs, &faults, end_ns, &run.history.header.run_id)
            .map_err(io(dir))?;
    let signal_files = match &run.metrics {
        Some(m) => {
            let signals = crate::checks::signals::run_signals(run, &params.signals, &params.budget)
                .unwrap_or_default();
            let out = dir.join(files::SIGNALS_DIR);
            export::write(&out, m, &signals, &seams::retry_load(m)).map_err(io(&out))?
        }
        None => Vec::new(),
    };
    let html = render_index(
        run,
        results,
        &graphs,
        &faults,
        timeline_pages.len(),
        pairs.len(),
        &signal_files,
        other,
    )?;
    write(&dir.join(files::INDEX), html.as_bytes())?;
    Ok(Written {
        graphs,
        timeline_pages,
        signal_files,
    })
}

/// `goodput.png` when the run had a retry storm: this run's goodput and `other`'s.
fn goodput_graph(
    run: &RunData,
    other: Option<&RunData>,
    faults: &[analysis::FaultWindow],
    params: &Params,
) -> Result<Option<Graph>, ReportError> {
    use crate::checks::retry_load::storm;
    if !faults.iter().any(|w| w.fault == storm::STORM) {
        return Ok(None);
    }
    let mine = storm::goodput(run, faults, &params.recovery);
    let theirs = other
        .and_then(|o| storm::goodput(o, &analysis::fault_windows(&o.history), &params.recovery));
    let mut runs = vec![plot_goodput::GoodputRun {
        label: retry_label(run),
        goodput: mine.as_ref(),
    }];
    if let Some(o) = other {
        runs.push(plot_goodput::GoodputRun {
            label: retry_label(o),
            goodput: theirs.as_ref(),
        });
    }
    let metrics_end = run.metrics.as_ref().map_or(0.0, |m| m.end_s);
    let end_s = (analysis::end_ns(&run.history) as f64 / 1e9).max(metrics_end);
    let path = run.dir.join(files::GOODPUT_PNG);
    plot_goodput::draw(
        &path,
        &runs,
        params.recovery.recovered_fraction,
        faults,
        end_s,
    )?;
    Ok(Some(graph(
        files::GOODPUT_PNG,
        "Payment goodput and recovery",
        "Charges answered 2xx per second at payment (summed over callers), one line per run (dashed: the compared run); the dotted line is the share of each run's pre-fault baseline that counts as recovered, a dot marks where each run got back to it after the heal. Shaded bands are fault periods.",
        plot_goodput::GOODPUT_SIZE,
    )))
}

fn retry_label(run: &RunData) -> String {
    let budget = if run.spec.config.switches.no_retry_budget {
        "no retry budget"
    } else {
        "retry budget on"
    };
    format!("{} ({budget})", run.history.header.run_id)
}

fn draw_graphs(
    run: &RunData,
    other: Option<&RunData>,
    pairs: &[analysis::Pair<'_>],
    faults: &[analysis::FaultWindow],
    params: &Params,
) -> Result<Vec<Graph>, ReportError> {
    let dir = &run.dir;
    let metrics_end = run.metrics.as_ref().map_or(0.0, |m| m.end_s);
    let end_s = (analysis::end_ns(&run.history) as f64 / 1e9).max(metrics_end);
    let t = analysis::throughput(&run.history, None);
    plot_ops::throughput(
        &dir.join(files::THROUGHPUT_PNG),
        "Client throughput by outcome (all operations)",
        &t,
        faults,
    )?;
    plot_ops::latency(&dir.join(files::LATENCY_PNG), pairs, faults, end_s)?;
    plot_ops::timeline(&dir.join(files::TIMELINE_PNG), pairs, faults, end_s)?;

    let loads = run
        .metrics
        .as_ref()
        .map(seams::retry_load)
        .unwrap_or_default();
    let other_loads = other
        .and_then(|o| o.metrics.as_ref())
        .map(seams::retry_load)
        .unwrap_or_default();
    let mut runs = vec![plot_metrics::RetryRun {
        label: retry_label(run),
        loads: &loads,
    }];
    if let Some(o) = other {
        runs.push(plot_metrics::RetryRun {
            label: retry_label(o),
            loads: &other_loads,
        });
    }
    plot_metrics::retry_load(&dir.join(files::RETRY_LOAD_PNG), &runs, faults, end_s)?;
    let signals = crate::checks::signals::run_signals(run, &params.signals, &params.budget)
        .unwrap_or_else(|| empty_signals(run, params));
    let tokens = run
        .metrics
        .as_ref()
        .map(seams::leader_tokens)
        .unwrap_or_default();
    let missing_note = if run.metrics.is_some() {
        "no such series in metrics.csv"
    } else {
        "metrics.csv is missing from this run"
    };
    plot_metrics::signals(
        &dir.join(files::SIGNALS_PNG),
        &signals,
        &tokens,
        faults,
        end_s,
        missing_note,
    )?;

    let processes = pairs
        .iter()
        .map(|p| p.invoke.process)
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    Ok(vec![
        graph(files::LATENCY_PNG, "Latency of every client operation", "Each dot is one operation at its completion time, coloured by outcome; the y axis is logarithmic. Shaded bands are fault periods, named in the legend.", plot_ops::LATENCY_SIZE),
        graph(files::THROUGHPUT_PNG, "Throughput by outcome", "Client operations completed per second: ok, fail (did not happen) and info (may have happened).", plot_ops::THROUGHPUT_SIZE),
        graph(files::RETRY_LOAD_PNG, "Retry load per downstream", "Logical requests, retries and retries refused by the budget per second, summed over callers, one line per downstream service.", plot_metrics::RETRY_SIZE),
        graph(files::SIGNALS_PNG, "Seam signals", "One panel per seam signal on a shared time axis; a signal has moved when it rises above its dashed threshold.", plot_metrics::SIGNALS_SIZE),
        graph(files::TIMELINE_PNG, "Operations per process", "Each bar is one operation from invoke to completion on its process's lane; grey bars never completed.", (png::WIDTH, plot_ops::timeline_height(processes))),
    ])
}

fn graph(
    file: &'static str,
    title: &'static str,
    caption: &'static str,
    (width, height): (u32, u32),
) -> Graph {
    Graph {
        file,
        title,
        caption,
        width,
        height,
    }
}

/// Signals with no data, so the dashboard still names every panel when metrics are missing.
fn empty_signals(run: &RunData, params: &Params) -> Vec<seams::Signal> {
    let seconds = (analysis::end_ns(&run.history) / 1_000_000_000) as usize + 1;
    let blank = crate::metrics::Metrics {
        end_s: seconds as f64 - 1.0,
        ..Default::default()
    };
    seams::signals(&blank, &params.signals, &params.budget, None)
}
