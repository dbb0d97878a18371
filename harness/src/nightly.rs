//! `harness nightly`: the combined-fault job. N runs, each with two faults of different kinds
//! at once chosen from its seed (`--nemesis all --nemesis-pairs`), optionally every named
//! scenario with its protection on and off, then a summary: a table on stderr,
//! `nightly-<timestamp>.json` in the out directory, and the runs index.
//!
//! The exit code is the worst result (invalid > unknown > valid). A combined run counts by its
//! verdict; a scenario run counts by its expectation (held is valid, not held invalid), since a
//! run with a protection switched off is meant to be invalid. A run that crashed, or that was
//! not started because the job's `--total-limit` had passed, counts unknown.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use checker::Validity;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::cli::NightlyArgs;
use crate::run::{self, RunOutcome};
use crate::scenario::{self, runner, Overrides};
use crate::EXIT_CRASH;
use checker::checks::Signals;
use formats::fault::Kinds;
use formats::spec::RunConfig;

/// The `--scenario` folder of combined-fault runs.
pub const FOLDER: &str = "nightly";
/// Longest fault slot of a combined run; shorter runs get two slots' worth of their length.
const MAX_INTERVAL: Duration = Duration::from_secs(10);

/// One row of the summary.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// `combined` or `scenario`.
    pub kind: &'static str,
    /// The `--scenario` folder.
    pub scenario: String,
    /// For scenario runs: whether the protection was on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protection_on: Option<bool>,
    /// The run's seed.
    pub seed: u64,
    /// The run directory (relative to the out directory when under it).
    pub dir: Option<String>,
    /// The run's verdict, `not checked`, `crashed` or `not started`.
    pub verdict: String,
    /// For scenario runs: `held`, `not held` or `unknown`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expectation: Option<String>,
    /// The faults injected: `f1 pause n3/order`, ...
    pub faults: Vec<String>,
    /// What the row counts as in the job's result.
    pub counts_as: Validity,
    /// A crash's message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What the job runs, in order.
enum Job {
    Combined,
    Scenario(scenario::Scenario, bool),
}

/// The arguments of combined run `i`: every fault kind, two at once, a slot of at most
/// [`MAX_INTERVAL`] (half the run for short runs, so that each run has a slot).
pub fn combined_args(a: &NightlyArgs, seed: u64) -> RunConfig {
    let interval = (a.time_limit / 2).clamp(Duration::from_secs(1), MAX_INTERVAL);
    RunConfig {
        nemesis: Kinds::all(),
        nemesis_pairs: true,
        nemesis_interval: Some(interval),
        scenario: FOLDER.into(),
        time_limit: a.time_limit,
        seed: Some(seed),
        out: a.out.clone(),
        pipeline_bin: a.pipeline_bin.clone(),
        ..RunConfig::default()
    }
}

fn relative(out: &Path, dir: &Path) -> String {
    dir.strip_prefix(out)
        .unwrap_or(dir)
        .to_string_lossy()
        .into_owned()
}

fn row_of(out: &Path, kind: &'static str, run: &RunOutcome, on: Option<bool>) -> Row {
    let verdict = run.results.as_ref().map(|r| r.validity);
    let expectation = on.map(|_| {
        run.results
            .as_ref()
            .and_then(|r| r.expectation.as_ref())
            .map_or(checker::expectation::Outcome::Unknown, |e| e.outcome)
    });
    Row {
        kind,
        scenario: run
            .dir
            .parent()
            .and_then(|p| p.file_name())
            .map_or(String::new(), |n| n.to_string_lossy().into_owned()),
        protection_on: on,
        seed: run.seed,
        dir: Some(relative(out, &run.dir)),
        verdict: verdict.map_or("not checked".into(), |v| v.to_string()),
        expectation: expectation.map(|e| e.as_str().to_owned()),
        faults: run.results.as_ref().map(faults_of).unwrap_or_default(),
        counts_as: match expectation {
            Some(e) => e.as_validity(),
            None => verdict.unwrap_or(Validity::Unknown),
        },
        error: None,
    }
}

/// The faults a run injected, as the signals check lists them: `f1 pause n3/order`.
fn faults_of(results: &checker::Results) -> Vec<String> {
    results
        .check::<Signals>()
        .map(|(_, d)| {
            d.faults
                .iter()
                .map(|f| format!("{} {} {}", f.id, f.fault, f.target))
                .collect()
        })
        .unwrap_or_default()
}

fn not_run(kind: &'static str, scenario: String, on: Option<bool>, seed: u64, why: String) -> Row {
    Row {
        kind,
        scenario,
        protection_on: on,
        seed,
        dir: None,
        verdict: if why.is_empty() {
            "not started".into()
        } else {
            "crashed".into()
        },
        expectation: on.map(|_| "unknown".to_owned()),
        faults: Vec::new(),
        counts_as: Validity::Unknown,
        error: (!why.is_empty()).then_some(why),
    }
}

/// `harness nightly`: returns the exit code.
pub async fn main(a: NightlyArgs) -> i32 {
    let seed = a.seed.unwrap_or_else(rand::random);
    let started = Instant::now();
    let started_unix_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    eprintln!(
        "harness: nightly seed {seed}: {} combined-fault runs of {:?}{}",
        a.runs,
        a.time_limit,
        if a.scenarios {
            " and the scenario matrix"
        } else {
            ""
        }
    );
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut jobs: Vec<(Job, u64)> = (0..a.runs).map(|_| (Job::Combined, rng.gen())).collect();
    if a.scenarios {
        for s in scenario::all() {
            jobs.push((Job::Scenario(s.clone(), true), seed));
            jobs.push((Job::Scenario(s, false), seed));
        }
    }
    let mut rows: Vec<Row> = Vec::with_capacity(jobs.len());
    let mut interrupted = false;
    for (job, run_seed) in jobs {
        let (kind, name, on) = match &job {
            Job::Combined => ("combined", FOLDER.to_owned(), None),
            Job::Scenario(s, on) => ("scenario", s.folder(*on), Some(*on)),
        };
        if interrupted || started.elapsed() >= a.total_limit {
            rows.push(not_run(kind, name, on, run_seed, String::new()));
            continue;
        }
        let result = match &job {
            Job::Combined => run::execute(combined_args(&a, run_seed)).await,
            Job::Scenario(s, on) => {
                let o = Overrides {
                    seed: Some(run_seed),
                    time_limit: None,
                    out: Some(a.out.clone()),
                    pipeline_bin: a.pipeline_bin.clone(),
                };
                runner::run_one(s, *on, &o, None).await.map(|r| r.run)
            }
        };
        match result {
            Ok(r) => {
                interrupted = r.code == run::EXIT_INTERRUPTED;
                rows.push(row_of(&a.out, kind, &r, on));
            }
            Err(e) => {
                eprintln!("harness: nightly run {name} crashed: {e:#}");
                rows.push(not_run(kind, name, on, run_seed, format!("{e:#}")));
            }
        }
    }
    let worst = Validity::all(rows.iter().map(|r| r.counts_as));
    eprint!("{}", table(&rows));
    let summary = serde_json::json!({
        "seed": seed,
        "started_unix_ms": started_unix_ms,
        "duration_s": started.elapsed().as_secs_f64(),
        "runs": a.runs,
        "time_limit_s": a.time_limit.as_secs_f64(),
        "total_limit_s": a.total_limit.as_secs_f64(),
        "scenarios": a.scenarios,
        "interrupted": interrupted,
        "worst": worst,
        "rows": rows,
    });
    let path = a
        .out
        .join(format!("nightly-{}.json", crate::rundir::timestamp()));
    let written = std::fs::create_dir_all(&a.out).and_then(|()| {
        std::fs::write(
            &path,
            serde_json::to_vec_pretty(&summary).unwrap_or_default(),
        )
    });
    if let Err(e) = written {
        eprintln!("harness: writing '{}': {e}", path.display());
        return EXIT_CRASH;
    }
    run::write_runs_index(&a.out);
    eprintln!("harness: nightly {worst} — summary {}", path.display());
    println!("{worst}");
    if interrupted {
        run::EXIT_INTERRUPTED
    } else {
        worst.exit_code()
    }
}

/// The summary table for stderr.
pub fn table(rows: &[Row]) -> String {
    let mut out = format!(
        "harness: nightly summary\n  {:>3}  {:<8}  {:<28}  {:>20}  {:<11}  {:<11}  {:<24}  {}\n",
        "#", "kind", "scenario", "seed", "verdict", "expectation", "faults", "run"
    );
    for (i, r) in rows.iter().enumerate() {
        out.push_str(&format!(
            "  {:>3}  {:<8}  {:<28}  {:>20}  {:<11}  {:<11}  {:<24}  {}\n",
            i + 1,
            r.kind,
            r.scenario,
            r.seed,
            r.verdict,
            r.expectation.as_deref().unwrap_or("-"),
            kinds(&r.faults),
            r.dir
                .clone()
                .or_else(|| r.error.clone())
                .unwrap_or_else(|| "-".into())
        ));
    }
    out
}

/// `pause+latency`: the kinds of `f1 pause n3/order`-style fault lines.
fn kinds(faults: &[String]) -> String {
    if faults.is_empty() {
        return "-".into();
    }
    faults
        .iter()
        .map(|f| f.split_whitespace().nth(1).unwrap_or("?"))
        .collect::<Vec<_>>()
        .join("+")
}

/// Where the summaries of a reports directory are (newest last), for tests and scripts.
pub fn summaries(out: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(out)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("nightly-") && n.ends_with(".json"))
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(time_limit_s: u64) -> NightlyArgs {
        NightlyArgs {
            runs: 2,
            seed: Some(5),
            time_limit: Duration::from_secs(time_limit_s),
            out: PathBuf::from("reports"),
            scenarios: false,
            total_limit: Duration::from_secs(3600),
            pipeline_bin: None,
        }
    }

    /// Proves a combined run asks for every fault kind two at once with a slot that fits the
    /// run, so that even a short run holds one pair of faults.
    #[test]
    fn combined_runs_hold_a_pair_of_faults() {
        for t in [8, 60] {
            let a = combined_args(&args(t), 9);
            assert!(a.nemesis_pairs);
            assert_eq!(a.nemesis.0.len(), nemesis::schedule::Kind::ALL.len());
            assert_eq!(a.scenario, FOLDER);
            assert!(crate::config::validate(&a).is_ok());
            let planned = crate::faults::plan(&a, 9, 3);
            assert!(planned.len() >= 2, "{t}s: {planned:?}");
            assert!(planned.iter().all(|p| p.at + p.duration < a.time_limit));
        }
    }
}
