//! `reports/index.html`: every run under a reports directory (scenario, start time, seed,
//! verdict, duration, link), newest first. Rewritten after each run; reads only each run's
//! `spec.json`, `results.json` and the first line of `history.jsonl`.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use minijinja::context;
use serde::Serialize;

use super::{write, ReportError};
use formats::history::Header;

use crate::rundir::files;
use crate::verdict::Results;

/// Most runs listed; older ones are counted in a note.
pub const MAX_RUNS_LISTED: usize = 10_000;
/// Most scenario folders and runs per scenario looked at (bounded directory walks).
pub const MAX_DIR_ENTRIES: usize = 100_000;

static TEMPLATE: &str = include_str!("../../templates/runs.html");

/// One row of the runs index.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunRow {
    /// Scenario name.
    pub scenario: String,
    /// Start time, UTC, e.g. `2026-11-25 20:30:00Z`.
    pub started: String,
    /// For sorting: Unix milliseconds, or 0 when unknown.
    pub started_unix_ms: u64,
    /// The seed, as written in the spec.
    pub seed: String,
    /// `valid`, `invalid`, `unknown` or `not checked`.
    pub verdict: String,
    /// The scenario expectation: `fencing on: held`, or `-` for runs without one.
    pub expectation: String,
    /// `valid`, `invalid` or `unknown` for held, not held, unknown; empty without one.
    pub expectation_class: String,
    /// Duration in seconds, as text.
    pub duration: String,
    /// Link relative to the reports directory.
    pub link: String,
}

/// A Unix-millisecond instant as `YYYY-MM-DD HH:MM:SSZ` (UTC).
pub fn utc(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The history header: the first line, read up to 64 KiB.
fn header(path: &Path) -> Option<Header> {
    let file = std::fs::File::open(path).ok()?;
    let mut line = String::new();
    std::io::Read::take(std::io::BufReader::new(file), 64 * 1024)
        .read_line(&mut line)
        .ok()?;
    serde_json::from_str(line.trim_end()).ok()
}

fn row(reports: &Path, scenario: &str, run: &Path) -> Option<RunRow> {
    let spec = crate::rundir::read_spec(&run.join(files::SPEC))
        .ok()
        .map(|(s, _)| s);
    let head = header(&run.join(files::HISTORY));
    if spec.is_none() && head.is_none() {
        return None;
    }
    let results: Option<Results> = std::fs::read(run.join(files::RESULTS))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let config = spec.as_ref().map(|s| &s.config);
    let expectation = results.as_ref().and_then(|r| r.expectation.clone());
    let started_unix_ms = head.as_ref().map_or(0, |h| h.started_unix_ms);
    let dir_name = run.file_name()?.to_string_lossy().into_owned();
    let rel = run
        .strip_prefix(reports)
        .ok()?
        .to_string_lossy()
        .into_owned();
    let duration = match results.as_ref().and_then(|r| r.duration_s) {
        Some(d) => format!("{d:.1} s"),
        None => config.map_or("-".into(), |c| {
            format!("{:.0} s (limit)", c.time_limit.as_secs_f64())
        }),
    };
    Some(RunRow {
        scenario: config.map_or(scenario, |c| c.scenario.as_str()).to_owned(),
        started: if started_unix_ms > 0 {
            utc(started_unix_ms)
        } else {
            dir_name
        },
        started_unix_ms,
        seed: config
            .and_then(|c| c.seed)
            .map_or("-".into(), |s| s.to_string()),
        expectation: expectation.as_ref().map_or("-".into(), |e| {
            format!(
                "{} {}: {}",
                e.protection,
                if e.protection_on { "on" } else { "off" },
                e.outcome
            )
        }),
        expectation_class: expectation
            .as_ref()
            .map_or(String::new(), |e| e.outcome.as_validity().to_string()),
        verdict: results.map_or("not checked".into(), |r| r.validity.to_string()),
        duration,
        link: if run.join(files::INDEX).is_file() {
            format!("{rel}/{}", files::INDEX)
        } else {
            format!("{rel}/")
        },
    })
}

fn subdirs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .take(MAX_DIR_ENTRIES)
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            // `latest` is a link to a run listed anyway; dot-folders are scratch.
            !name.starts_with('.') && name != "latest" && e.file_type().is_ok_and(|t| t.is_dir())
        })
        .map(|e| e.path())
        .collect()
}

/// Every run under `reports` (`<scenario>/<timestamp>/`), newest first.
pub fn runs(reports: &Path) -> Vec<RunRow> {
    let mut rows = Vec::new();
    for scenario_dir in subdirs(reports) {
        let scenario = scenario_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for run in subdirs(&scenario_dir) {
            rows.extend(row(reports, &scenario, &run));
        }
    }
    rows.sort_by(|a, b| {
        b.started_unix_ms
            .cmp(&a.started_unix_ms)
            .then_with(|| b.link.cmp(&a.link))
    });
    rows
}

/// Rewrites `<reports>/index.html`; returns how many runs it lists.
pub fn write_runs_index(reports: &Path) -> Result<usize, ReportError> {
    let mut rows = runs(reports);
    let total = rows.len();
    rows.truncate(MAX_RUNS_LISTED);
    let mut env = super::environment();
    env.add_template("runs.html", TEMPLATE)?;
    let html = env.get_template("runs.html")?.render(context! {
        runs => rows,
        total => total,
        not_listed => total.saturating_sub(MAX_RUNS_LISTED),
    })?;
    let tmp = reports.join(".index.html.tmp");
    write(&tmp, html.as_bytes())?;
    std::fs::rename(&tmp, reports.join(files::INDEX)).map_err(|source| ReportError::Io {
        path: reports.join(files::INDEX),
        source,
    })?;
    Ok(rows.len())
}
