//! The suite's page (`harness suite`, Jepsen's `test-all`): one run per cell of a matrix of
//! scenario x protection (on, off) plus the sustained chaos runs, repeated once per seed.
//! [`write_suite`] writes `summary.json` (the [`Summary`] as it is), `index.html` (the matrix:
//! per cell the expectation's outcome counted over the seeds, the key evidence numbers, each
//! run's verdict, link and rerun command) and `junit.xml` (one test case per run: a
//! `<failure>` when the expectation did not hold, an `<error>` when it is unknown).

use std::collections::BTreeMap;
use std::path::Path;

use minijinja::context;
use serde::{Deserialize, Serialize};

use super::{write, ReportError};
use crate::expectation::Outcome;

/// Version of `summary.json`.
pub const SUITE_VERSION: u32 = 1;
/// The suite's summary file.
pub const SUMMARY_JSON: &str = "summary.json";
/// The suite's JUnit file.
pub const JUNIT_XML: &str = "junit.xml";

/// Which column of the matrix a run belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// The scenario's protection on.
    On,
    /// The scenario's protection off.
    Off,
    /// A sustained chaos run: every protection on, two faults at once.
    Chaos,
}

impl Mode {
    /// `on`, `off` or `chaos`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::On => "on",
            Mode::Off => "off",
            Mode::Chaos => "chaos",
        }
    }
}

/// One run of the suite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    /// The matrix row: a scenario's name, or `chaos`.
    pub row: String,
    /// The protection the row proves (`every protection` for chaos).
    pub protection: String,
    /// The column.
    pub mode: Mode,
    /// The run's seed.
    pub seed: u64,
    /// The run directory, relative to the reports directory (`None`: not run).
    pub dir: Option<String>,
    /// The run's verdict, `not checked`, `crashed` or `not started`.
    pub verdict: String,
    /// Whether the cell's expectation held (a chaos run: held when valid).
    pub outcome: Outcome,
    /// Why, in one line.
    pub why: String,
    /// The key evidence numbers: `stale order writes rejected: 4 (at least 1)`.
    pub evidence: Vec<String>,
    /// The faults injected: `f1 pause n3/order`.
    pub faults: Vec<String>,
    /// The command that reruns this run.
    pub rerun: Option<String>,
    /// Wall-clock seconds of the run.
    pub duration_s: f64,
}

/// `summary.json` of a suite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// [`SUITE_VERSION`].
    pub schema_version: u32,
    /// `suite` or `nightly`.
    pub job: String,
    /// Start, Unix milliseconds.
    pub started_unix_ms: u64,
    /// Wall-clock seconds of the whole suite.
    pub duration_s: f64,
    /// The seed of each repetition of the matrix.
    pub seeds: Vec<u64>,
    /// `local`, `netns` or `ssh`.
    pub cluster: String,
    /// Workload seconds of each chaos run.
    pub chaos_time_s: f64,
    /// The rows asked for with `--only` (empty: all).
    pub only: Vec<String>,
    /// Whether Ctrl-C stopped it.
    pub interrupted: bool,
    /// The worst outcome (not held > unknown > held): the exit code.
    pub outcome: Outcome,
    /// Every run, in the order they ran.
    pub cells: Vec<Cell>,
}

impl Summary {
    /// The worst outcome of `cells`; no cell at all is unknown.
    pub fn outcome_of(cells: &[Cell]) -> Outcome {
        if cells.is_empty() {
            return Outcome::Unknown;
        }
        cells
            .iter()
            .fold(Outcome::Held, |acc, c| acc.and(c.outcome))
    }
}

/// One line of the matrix: a row's cells grouped by column.
#[derive(Debug, Serialize)]
struct MatrixRow<'a> {
    row: &'a str,
    protection: &'a str,
    columns: Vec<Column<'a>>,
}

/// One column of a matrix row: its runs (one per seed) and their count.
#[derive(Debug, Serialize)]
struct Column<'a> {
    mode: &'static str,
    held: usize,
    runs: Vec<&'a Cell>,
    outcome: &'static str,
}

fn matrix(cells: &[Cell]) -> Vec<MatrixRow<'_>> {
    let mut order: Vec<&str> = Vec::new();
    let mut by_row: BTreeMap<&str, BTreeMap<Mode, Vec<&Cell>>> = BTreeMap::new();
    for c in cells {
        if !order.contains(&c.row.as_str()) {
            order.push(&c.row);
        }
        by_row
            .entry(&c.row)
            .or_default()
            .entry(c.mode)
            .or_default()
            .push(c);
    }
    order
        .into_iter()
        .map(|row| {
            let modes = &by_row[row];
            let first = modes.values().flatten().next().expect("a row has a cell");
            MatrixRow {
                row,
                protection: &first.protection,
                columns: modes
                    .iter()
                    .map(|(mode, runs)| {
                        let outcome = runs.iter().fold(Outcome::Held, |a, c| a.and(c.outcome));
                        Column {
                            mode: mode.as_str(),
                            held: runs.iter().filter(|c| c.outcome == Outcome::Held).count(),
                            runs: runs.clone(),
                            outcome: outcome.as_str(),
                        }
                    })
                    .collect(),
            }
        })
        .collect()
}

const TEMPLATE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>harness {{ s.job }}: {{ s.outcome }}</title>
<style>
body { font-family: sans-serif; margin: 1.5em; }
table { border-collapse: collapse; }
td, th { border: 1px solid #bbb; padding: 0.3em 0.6em; vertical-align: top; text-align: left; }
.held { background: #d9f2d9; } .not-held { background: #f7d4d4; } .unknown { background: #f7ecc8; }
code { font-size: 0.85em; }
</style></head><body>
<h1>harness {{ s.job }}: every expectation {% if s.outcome == "held" %}held{% else %}did not hold ({{ s.outcome }}){% endif %}</h1>
<p>{{ s.cells|length }} runs on a {{ s.cluster }} cluster in {{ "%.0f"|format(s.duration_s) }} s;
seeds {{ s.seeds|join(", ") }}; chaos runs of {{ s.chaos_time_s }} s{% if s.only %}; only {{ s.only|join(", ") }}{% endif %}{% if s.interrupted %}; <b>interrupted</b>{% endif %}.
<a href="summary.json">summary.json</a> · <a href="junit.xml">junit.xml</a> · <a href="../../index.html">all runs</a></p>
<h2>Matrix</h2>
<table><tr><th>scenario</th><th>protection</th><th>on</th><th>off</th><th>chaos</th></tr>
{% for r in rows %}<tr><td>{{ r.row }}</td><td>{{ r.protection }}</td>
{% for mode in ["on", "off", "chaos"] %}{% set col = r.columns|selectattr("mode", "equalto", mode)|first %}{% if col %}<td class="{{ col.outcome|replace(" ", "-") }}">{{ col.outcome }}: {{ col.held }} of {{ col.runs|length }} held{% for c in col.runs %}<br><a href="../../{{ c.dir }}/index.html">{{ c.verdict }}</a> (seed {{ c.seed }}){% for e in c.evidence %}<br><small>{{ e }}</small>{% endfor %}{% endfor %}</td>{% else %}<td>—</td>{% endif %}{% endfor %}
</tr>{% endfor %}
</table>
<h2>Runs</h2>
<table><tr><th>#</th><th>cell</th><th>seed</th><th>verdict</th><th>expectation</th><th>why</th><th>faults</th><th>rerun</th></tr>
{% for c in s.cells %}<tr class="{{ c.outcome|replace(" ", "-") }}"><td>{{ loop.index }}</td><td>{% if c.dir %}<a href="../../{{ c.dir }}/index.html">{{ c.row }} {{ c.mode }}</a>{% else %}{{ c.row }} {{ c.mode }}{% endif %}</td><td>{{ c.seed }}</td><td>{{ c.verdict }}</td><td>{{ c.outcome }}</td><td>{{ c.why }}</td><td>{{ c.faults|join(", ") }}</td><td>{% if c.rerun %}<code>{{ c.rerun }}</code>{% endif %}</td></tr>
{% endfor %}</table>
</body></html>
"#;

/// Escapes text for XML content and attributes: the HTML escapes (valid XML too), and the
/// control characters XML 1.0 does not allow as spaces.
fn xml_escape(s: &str) -> String {
    let allowed: String = s
        .chars()
        .map(|c| {
            if c.is_control() && !matches!(c, '\n' | '\t' | '\r') {
                ' '
            } else {
                c
            }
        })
        .collect();
    super::timeline::escape(&allowed)
}

/// The JUnit XML of a suite: one `<testcase>` per run, named `<row> <protection> <mode> seed
/// <seed>`, with a `<failure>` when its expectation did not hold and an `<error>` when unknown.
pub fn junit(s: &Summary) -> String {
    let failures = s
        .cells
        .iter()
        .filter(|c| c.outcome == Outcome::NotHeld)
        .count();
    let errors = s
        .cells
        .iter()
        .filter(|c| c.outcome == Outcome::Unknown)
        .count();
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"harness {job}\" \
         tests=\"{n}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{t:.3}\">\n\
         <testsuite name=\"harness {job}\" tests=\"{n}\" failures=\"{failures}\" \
         errors=\"{errors}\" time=\"{t:.3}\">\n",
        job = xml_escape(&s.job),
        n = s.cells.len(),
        t = s.duration_s,
    );
    for c in &s.cells {
        let name = format!(
            "{} {} {} seed {}",
            c.row,
            c.protection,
            c.mode.as_str(),
            c.seed
        );
        out.push_str(&format!(
            "  <testcase classname=\"{}.{}\" name=\"{}\" time=\"{:.3}\">\n",
            xml_escape(&s.job),
            xml_escape(&c.row),
            xml_escape(&name),
            c.duration_s
        ));
        let body = format!(
            "verdict {}; {}\nrun: {}\nrerun: {}",
            c.verdict,
            c.why,
            c.dir.as_deref().unwrap_or("-"),
            c.rerun.as_deref().unwrap_or("-")
        );
        match c.outcome {
            Outcome::Held => {}
            Outcome::NotHeld => out.push_str(&format!(
                "    <failure message=\"{}\" type=\"expectation not held\">{}</failure>\n",
                xml_escape(&c.why),
                xml_escape(&body)
            )),
            Outcome::Unknown => out.push_str(&format!(
                "    <error message=\"{}\" type=\"unknown\">{}</error>\n",
                xml_escape(&c.why),
                xml_escape(&body)
            )),
        }
        out.push_str("  </testcase>\n");
    }
    out.push_str("</testsuite>\n</testsuites>\n");
    out
}

/// Writes `summary.json`, `index.html` and `junit.xml` of `s` into `dir` (created).
pub fn write_suite(dir: &Path, s: &Summary) -> Result<(), ReportError> {
    assert_eq!(s.schema_version, SUITE_VERSION);
    std::fs::create_dir_all(dir).map_err(|source| ReportError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let json = serde_json::to_vec_pretty(s).expect("a summary serializes");
    write(&dir.join(SUMMARY_JSON), &json)?;
    write(&dir.join(JUNIT_XML), junit(s).as_bytes())?;
    let mut env = super::environment();
    env.add_template("suite.html", TEMPLATE)?;
    let html = env.get_template("suite.html")?.render(context! {
        s => s,
        rows => matrix(&s.cells),
    })?;
    write(&dir.join(formats::files::INDEX), html.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(row: &str, mode: Mode, outcome: Outcome) -> Cell {
        Cell {
            row: row.into(),
            protection: "fencing".into(),
            mode,
            seed: 7,
            dir: Some(format!("{row}/20261201T000000Z")),
            verdict: "valid".into(),
            outcome,
            why: "a <reason> & more".into(),
            evidence: vec!["stale order writes rejected: 4 (at least 1)".into()],
            faults: vec!["f1 pause n1/order".into()],
            rerun: Some("harness scenario run stale-leader --seed 7".into()),
            duration_s: 20.0,
        }
    }

    /// Proves the outcome is the worst cell's, an empty suite is unknown, the matrix groups
    /// runs per row and column with their counts, and the JUnit file counts failures and
    /// errors with escaped messages.
    #[test]
    fn matrix_and_junit_count_every_run() {
        let cells = vec![
            cell("stale-leader", Mode::On, Outcome::Held),
            cell("stale-leader", Mode::Off, Outcome::NotHeld),
            cell("stale-leader", Mode::On, Outcome::Held),
            cell("chaos", Mode::Chaos, Outcome::Unknown),
        ];
        assert_eq!(Summary::outcome_of(&cells), Outcome::NotHeld);
        assert_eq!(Summary::outcome_of(&cells[..1]), Outcome::Held);
        assert_eq!(Summary::outcome_of(&[]), Outcome::Unknown);
        let m = matrix(&cells);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].row, "stale-leader");
        assert_eq!(m[0].columns.len(), 2);
        assert_eq!((m[0].columns[0].held, m[0].columns[0].runs.len()), (2, 2));
        assert_eq!(m[0].columns[1].outcome, "not held");
        let s = Summary {
            schema_version: SUITE_VERSION,
            job: "suite".into(),
            started_unix_ms: 0,
            duration_s: 80.0,
            seeds: vec![7],
            cluster: "local".into(),
            chaos_time_s: 120.0,
            only: vec![],
            interrupted: false,
            outcome: Summary::outcome_of(&cells),
            cells,
        };
        let x = junit(&s);
        assert!(x.contains("tests=\"4\" failures=\"1\" errors=\"1\""), "{x}");
        assert_eq!(x.matches("<testcase ").count(), 4);
        assert_eq!(x.matches("<failure ").count(), 1);
        assert_eq!(x.matches("<error ").count(), 1);
        assert!(x.contains("a &lt;reason&gt; &amp; more"), "{x}");
        assert!(!x.contains("<reason>"));
        assert_eq!(xml_escape("a\u{1}b'"), "a b&#39;");
    }
}
