//! `harness suite` (Jepsen's `test-all`), also `harness nightly`: every named scenario with its
//! protection on and off (the consistency swap among them), then sustained chaos runs with
//! two faults at once, repeated once per seed. It writes `<out>/suite/<timestamp>/` (the matrix
//! page, `junit.xml`, `summary.json`; `<out>/suite/latest` points at it), rewrites the runs
//! index, and exits 0 only when every expectation held, 1 when one did not, 2 when one is
//! unknown (130 when interrupted).
//!
//! A scenario run counts by its expectation (a run with its protection off is meant to be
//! invalid); a chaos run holds when its verdict is valid. A run that crashed, or that was not
//! started because `--total-limit` had passed, is unknown.

use std::path::Path;
use std::time::{Duration, Instant};

use checker::expectation::Outcome;
use checker::report::suite::{Cell, Mode, Summary, SUITE_VERSION};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::cli::SuiteArgs;
use crate::run::{self, RunOutcome};
use crate::scenario::{self, runner, Overrides, Scenario};
use crate::{BadInput, EXIT_BAD_ARGS, EXIT_CRASH};
use checker::checks::Signals;
use formats::fault::Kinds;
use formats::spec::RunConfig;
use formats::Validity;

/// Where suite pages go under the reports directory.
pub const FOLDER: &str = "suite";
/// The matrix row, and the `--scenario` folder, of chaos runs.
pub const CHAOS: &str = "chaos";
/// Longest fault slot of a chaos run; shorter runs get half their length.
const MAX_INTERVAL: Duration = Duration::from_secs(10);
/// How long a chaos run may take to drain after its workload: two faults at once leave a
/// backlog of sagas (measured: seed 2 of the default chaos run had 65 sagas open after 30 s
/// and none after 120 s).
const CHAOS_QUIESCE: Duration = Duration::from_secs(120);
/// Shortest chaos run that holds a pair of faults that heal before its end.
const MIN_CHAOS: Duration = Duration::from_secs(4);

/// One run of the suite.
#[derive(Debug, Clone)]
pub enum Job {
    /// A scenario with its protection on (`true`) or off.
    Scenario(Scenario, bool),
    /// A sustained chaos run.
    Chaos,
}

impl Job {
    fn row(&self) -> &str {
        match self {
            Job::Scenario(s, _) => s.name,
            Job::Chaos => CHAOS,
        }
    }

    fn mode(&self) -> Mode {
        match self {
            Job::Scenario(_, true) => Mode::On,
            Job::Scenario(_, false) => Mode::Off,
            Job::Chaos => Mode::Chaos,
        }
    }

    fn protection(&self) -> &str {
        match self {
            Job::Scenario(s, _) => s.protection,
            Job::Chaos => "every protection",
        }
    }
}

/// The run of a chaos cell: every fault kind, two at once, slots of at most
/// [`MAX_INTERVAL`], for `--chaos-time`, on the suite's cluster.
pub fn chaos_config(a: &SuiteArgs, seed: u64) -> RunConfig {
    let interval = (a.chaos_time / 2).clamp(Duration::from_secs(1), MAX_INTERVAL);
    let mut c = RunConfig {
        nemesis: Kinds::all(),
        nemesis_pairs: true,
        nemesis_interval: Some(interval),
        scenario: CHAOS.into(),
        time_limit: a.chaos_time,
        quiesce_timeout: CHAOS_QUIESCE,
        seed: Some(seed),
        out: a.out.clone(),
        pipeline_bin: a.pipeline_bin.clone(),
        faultproxy_bin: a.faultproxy_bin.clone(),
        ..RunConfig::default()
    };
    if let Some(choice) = a.cluster.choice() {
        c.cluster = choice.cluster;
        c.nodes = choice.nodes;
        c.nodes_file = choice.nodes_file;
    }
    c.canonical()
}

/// The seed of each repetition: `--seed` (or a random one) first, then fresh ones drawn from
/// it.
pub fn seeds(a: &SuiteArgs) -> Vec<u64> {
    let first = a.seed.unwrap_or_else(rand::random);
    let mut rng = ChaCha8Rng::seed_from_u64(first);
    std::iter::once(first)
        .chain((1..a.seeds).map(|_| rng.gen()))
        .collect()
}

/// The rows `--only` may name.
pub fn row_names() -> Vec<&'static str> {
    scenario::all()
        .iter()
        .map(|s| s.name)
        .chain([CHAOS])
        .collect()
}

/// Every run of the suite in order, with its seed; bad `--only` names or options are bad
/// input.
pub fn jobs(a: &SuiteArgs, seeds: &[u64]) -> Result<Vec<(Job, u64)>, BadInput> {
    let known = row_names();
    if let Some(bad) = a.only.iter().find(|n| !known.contains(&n.as_str())) {
        return Err(BadInput(format!(
            "--only {bad}: no such scenario (known: {})",
            known.join(", ")
        )));
    }
    if a.chaos_time < MIN_CHAOS {
        return Err(BadInput(format!(
            "--chaos-time {}: at least {} (two faults must start and heal)",
            formats::duration::spell(a.chaos_time),
            formats::duration::spell(MIN_CHAOS)
        )));
    }
    let wanted = |name: &str| a.only.is_empty() || a.only.iter().any(|n| n == name);
    let mut jobs = Vec::new();
    for &seed in seeds {
        for s in scenario::all().into_iter().filter(|s| wanted(s.name)) {
            let o = overrides(a, seed);
            for on in [true, false] {
                s.config(on, &o)?;
                jobs.push((Job::Scenario(s.clone(), on), seed));
            }
        }
        if wanted(CHAOS) {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            for i in 0..a.chaos_runs {
                let run_seed = if i == 0 { seed } else { rng.gen() };
                crate::config::validate(&chaos_config(a, run_seed))
                    .map_err(|m| BadInput(format!("chaos run: {m}")))?;
                jobs.push((Job::Chaos, run_seed));
            }
        }
    }
    if jobs.is_empty() {
        return Err(BadInput(
            "nothing to run: --only names no row and --chaos-runs is 0".into(),
        ));
    }
    Ok(jobs)
}

fn overrides(a: &SuiteArgs, seed: u64) -> Overrides {
    Overrides {
        seed: Some(seed),
        time_limit: None,
        out: Some(a.out.clone()),
        pipeline_bin: a.pipeline_bin.clone(),
        faultproxy_bin: a.faultproxy_bin.clone(),
        cluster: a.cluster.choice(),
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

/// A scenario run's outcome, why, and evidence numbers, from its expectation's result.
fn judged_scenario(results: &checker::Results) -> (Outcome, String, Vec<String>) {
    let Some(e) = results.expectation.as_ref() else {
        return (Outcome::Unknown, "no expectation evaluated".into(), vec![]);
    };
    let evidence = e
        .requirements
        .iter()
        .map(|r| {
            let found = r.found.map_or("missing".to_owned(), |v| v.to_string());
            match (&r.requirement.evidence, r.measured) {
                (Some(ev), Some(m)) => {
                    format!("{}: {m} (at least {}; {found})", ev.what, ev.at_least)
                }
                (Some(ev), None) => format!("{}: not measured ({found})", ev.what),
                (None, _) => format!("{} {found}", r.requirement.check),
            }
        })
        .collect();
    (e.outcome, e.line(), evidence)
}

/// A chaos run's outcome (held when valid), why, and the checks that were not valid.
fn judged_chaos(results: &checker::Results) -> (Outcome, String, Vec<String>) {
    let outcome = match results.validity {
        Validity::Valid => Outcome::Held,
        Validity::Invalid => Outcome::NotHeld,
        Validity::Unknown => Outcome::Unknown,
    };
    let not_valid: Vec<String> = results
        .checks
        .iter()
        .filter(|c| c.validity != Validity::Valid)
        .map(|c| format!("{} {}: {}", c.name, c.validity, c.summary))
        .collect();
    let why = if not_valid.is_empty() {
        format!("every one of {} checks valid", results.checks.len())
    } else {
        format!("verdict {}", results.validity)
    };
    (outcome, why, not_valid)
}

fn cell_of(a: &SuiteArgs, job: &Job, run: &RunOutcome, took: Duration) -> Cell {
    let (outcome, why, evidence) = match (&run.results, job) {
        (None, _) => (Outcome::Unknown, "the run was not checked".into(), vec![]),
        (Some(r), Job::Scenario(..)) => judged_scenario(r),
        (Some(r), Job::Chaos) => judged_chaos(r),
    };
    let rerun = checker::rundir::read_spec(&run.dir.join(formats::files::SPEC))
        .ok()
        .map(|(spec, _)| spec.rerun);
    Cell {
        row: job.row().to_owned(),
        protection: job.protection().to_owned(),
        mode: job.mode(),
        seed: run.seed,
        dir: Some(runner::run_id(&a.out, &run.dir)),
        verdict: run
            .results
            .as_ref()
            .map_or("not checked".into(), |r| r.validity.to_string()),
        outcome,
        why,
        evidence,
        faults: run.results.as_ref().map(faults_of).unwrap_or_default(),
        rerun,
        duration_s: took.as_secs_f64(),
    }
}

fn not_run(job: &Job, seed: u64, error: Option<String>) -> Cell {
    Cell {
        row: job.row().to_owned(),
        protection: job.protection().to_owned(),
        mode: job.mode(),
        seed,
        dir: None,
        verdict: if error.is_some() {
            "crashed".into()
        } else {
            "not started".into()
        },
        outcome: Outcome::Unknown,
        why: error.unwrap_or_else(|| "not started: --total-limit passed or interrupted".into()),
        evidence: vec![],
        faults: vec![],
        rerun: None,
        duration_s: 0.0,
    }
}

/// After a protection-off run: redraws its protection-on twin's report (same row and seed)
/// with both runs on the comparison graphs (retry load, payment goodput), as
/// `harness scenario run --pair` does.
fn compare_pair(out: &std::path::Path, cells: &[Cell]) {
    let Some(off) = cells.last() else { return };
    let on = cells
        .iter()
        .rev()
        .find(|c| c.row == off.row && c.seed == off.seed && c.mode == Mode::On);
    if let (Some(on_dir), Some(off_dir)) = (on.and_then(|c| c.dir.as_ref()), off.dir.as_ref()) {
        runner::compare(&out.join(on_dir), &out.join(off_dir));
    }
}

async fn run_job(a: &SuiteArgs, job: &Job, seed: u64) -> anyhow::Result<RunOutcome> {
    match job {
        Job::Chaos => run::execute(chaos_config(a, seed)).await,
        Job::Scenario(s, on) => runner::run_one(s, *on, &overrides(a, seed), None)
            .await
            .map(|r| r.run),
    }
}

/// `harness suite` (`job` = `suite`) and `harness nightly` (`job` = `nightly`): returns the
/// exit code.
pub async fn main(a: SuiteArgs, job: &'static str) -> i32 {
    let seeds = seeds(&a);
    let jobs = match jobs(&a, &seeds) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("harness: {e}");
            return EXIT_BAD_ARGS;
        }
    };
    let started = Instant::now();
    let started_unix_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    eprintln!(
        "harness: {job} seeds {seeds:?}: {} runs (rerun one with the rerun line of its spec.json)",
        jobs.len()
    );
    let mut cells: Vec<Cell> = Vec::with_capacity(jobs.len());
    let mut interrupted = false;
    let total = jobs.len();
    for (i, (task, seed)) in jobs.iter().enumerate() {
        if interrupted || started.elapsed() >= a.total_limit {
            cells.push(not_run(task, *seed, None));
            continue;
        }
        eprintln!(
            "harness: {job_name} run {} of {total}: {} {} (seed {seed}, {:.0} s so far)",
            i + 1,
            task.row(),
            task.mode().as_str(),
            started.elapsed().as_secs_f64(),
            job_name = job_label(task),
        );
        let began = Instant::now();
        match run_job(&a, task, *seed).await {
            Ok(r) => {
                interrupted = r.code == run::EXIT_INTERRUPTED;
                cells.push(cell_of(&a, task, &r, began.elapsed()));
                if matches!(task, Job::Scenario(_, false)) {
                    compare_pair(&a.out, &cells);
                }
            }
            Err(e) => {
                eprintln!("harness: {job} run {} crashed: {e:#}", task.row());
                if e.downcast_ref::<BadInput>().is_some() {
                    return EXIT_BAD_ARGS;
                }
                cells.push(not_run(task, *seed, Some(format!("{e:#}"))));
            }
        }
    }
    finish(&a, job, seeds, cells, started, started_unix_ms, interrupted)
}

fn job_label(job: &Job) -> &'static str {
    match job {
        Job::Scenario(..) => "scenario",
        Job::Chaos => "chaos",
    }
}

fn finish(
    a: &SuiteArgs,
    job: &'static str,
    seeds: Vec<u64>,
    cells: Vec<Cell>,
    started: Instant,
    started_unix_ms: u64,
    interrupted: bool,
) -> i32 {
    let summary = Summary {
        schema_version: SUITE_VERSION,
        job: job.to_owned(),
        started_unix_ms,
        duration_s: started.elapsed().as_secs_f64(),
        seeds,
        cluster: a
            .cluster
            .choice()
            .map_or("local", |c| c.cluster.as_str())
            .to_owned(),
        chaos_time_s: a.chaos_time.as_secs_f64(),
        only: a.only.clone(),
        interrupted,
        outcome: Summary::outcome_of(&cells),
        cells,
    };
    eprint!("{}", table(&summary));
    let suites = a.out.join(FOLDER);
    let stamp = crate::rundir::timestamp();
    let dir = suites.join(&stamp);
    let written = checker::report::suite::write_suite(&dir, &summary)
        .map_err(anyhow::Error::from)
        .and_then(|()| crate::rundir::point_latest(&suites, Path::new(&stamp)));
    if let Err(e) = written {
        eprintln!("harness: writing the {job} page '{}': {e:#}", dir.display());
        return EXIT_CRASH;
    }
    run::write_runs_index(&a.out);
    eprintln!(
        "harness: {job}: {} — {}",
        summary.outcome,
        dir.join(formats::files::INDEX).display()
    );
    println!("{}", summary.outcome.as_str().replace(' ', "-"));
    if interrupted {
        run::EXIT_INTERRUPTED
    } else {
        summary.outcome.exit_code()
    }
}

/// The summary table for stderr.
pub fn table(s: &Summary) -> String {
    let mut out = format!(
        "harness: {} summary\n  {:>3}  {:<22}  {:<6}  {:>20}  {:<11}  {:<9}  {}\n",
        s.job, "#", "scenario", "mode", "seed", "verdict", "outcome", "run"
    );
    for (i, c) in s.cells.iter().enumerate() {
        out.push_str(&format!(
            "  {:>3}  {:<22}  {:<6}  {:>20}  {:<11}  {:<9}  {}\n",
            i + 1,
            c.row,
            c.mode.as_str(),
            c.seed,
            c.verdict,
            c.outcome.as_str(),
            c.dir.as_deref().unwrap_or(&c.why)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::ClusterOptions;

    fn args() -> SuiteArgs {
        SuiteArgs {
            seeds: 2,
            seed: Some(5),
            only: vec![],
            chaos_time: Duration::from_secs(120),
            chaos_runs: 1,
            out: "reports".into(),
            cluster: ClusterOptions::default(),
            total_limit: Duration::from_secs(3600),
            pipeline_bin: None,
            faultproxy_bin: None,
        }
    }

    /// Proves the suite runs every scenario on and off and one chaos run per seed, the first
    /// seed is the one asked for and the next are fresh, `--only` narrows the rows and refuses
    /// unknown names, and a chaos run holds pairs of faults that heal before its end.
    #[test]
    fn the_matrix_covers_every_scenario_both_ways_per_seed() {
        let a = args();
        let s = seeds(&a);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0], 5);
        assert_ne!(s[1], 5);
        let j = jobs(&a, &s).expect("builds");
        let n = scenario::all().len();
        assert_eq!(j.len(), 2 * (2 * n + 1));
        assert!(j
            .iter()
            .any(|(job, _)| job.row() == "consistency" && job.mode() == Mode::Off));
        assert_eq!(j.iter().filter(|(job, _)| job.row() == CHAOS).count(), 2);
        let only = SuiteArgs {
            only: vec!["stale-leader".into()],
            ..args()
        };
        assert_eq!(jobs(&only, &[1]).expect("builds").len(), 2);
        let bad = SuiteArgs {
            only: vec!["nope".into()],
            ..args()
        };
        let e = jobs(&bad, &[1]).expect_err("unknown");
        assert!(e.0.contains("nope") && e.0.contains("chaos"), "{e}");
        let short = SuiteArgs {
            chaos_time: Duration::from_secs(2),
            ..args()
        };
        assert!(jobs(&short, &[1])
            .expect_err("short")
            .0
            .contains("--chaos-time"));
        let c = chaos_config(&a, 9);
        let planned = crate::faults::plan(&c, 9, 3);
        assert!(planned.len() >= 2, "{planned:?}");
        assert!(planned.iter().all(|p| p.at + p.duration < c.time_limit));
    }
}
