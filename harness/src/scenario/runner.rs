//! `harness scenario list` and `harness scenario run`: runs through [`crate::run::execute`],
//! then reports the run's verdict and, separately, whether the scenario's expectation held.

use std::path::Path;

use checker::expectation::Outcome;

use super::{find, Overrides, Scenario};
use crate::cli::{ScenarioAction, ScenarioRunArgs};
use crate::run::{self, RunOutcome};
use crate::{BadInput, EXIT_BAD_ARGS, EXIT_CRASH};

/// `harness scenario ...`: returns the exit code.
pub async fn main(action: ScenarioAction) -> i32 {
    match action {
        ScenarioAction::List => {
            print!("{}", list());
            0
        }
        ScenarioAction::Run(args) => match run_cmd(&args).await {
            Ok(code) => code,
            Err(e) => {
                eprintln!("harness: {e:#}");
                if e.downcast_ref::<BadInput>().is_some() {
                    EXIT_BAD_ARGS
                } else {
                    EXIT_CRASH
                }
            }
        },
    }
}

/// The text of `harness scenario list`.
pub fn list() -> String {
    let mut out = String::new();
    for s in super::all() {
        out.push_str(&format!("{} — proves {}\n", s.name, s.protection));
        out.push_str(&format!("  {}\n", squash(s.about)));
        let base = s
            .config(true, &Overrides::default())
            .map(|c| shell_words(&crate::config::rerun_words(&c)))
            .unwrap_or_else(|e| format!("(does not build: {e})"));
        out.push_str(&format!("  run:  harness run {base}\n"));
        out.push_str(&format!("  off:  adds {}\n", s.off.flags().join(" ")));
        out.push_str(&format!("  on:   expects {}\n", squash(s.claim_on)));
        out.push_str(&format!("  off:  expects {}\n\n", squash(s.claim_off)));
    }
    out
}

fn squash(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn shell_words(words: &[String]) -> String {
    words
        .iter()
        .map(|w| crate::remote::quote(w))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One scenario run with its expectation's outcome.
#[derive(Debug, Clone)]
pub struct ScenarioOutcome {
    /// The run.
    pub run: RunOutcome,
    /// Protection on or off.
    pub protection_on: bool,
    /// Whether the expectation held (unknown when the run was not checked).
    pub outcome: Outcome,
}

/// Runs `scenario` once with the protection on or off and prints both verdicts.
pub async fn run_one(
    scenario: &Scenario,
    protection_on: bool,
    o: &Overrides,
    paired_with: Option<String>,
) -> anyhow::Result<ScenarioOutcome> {
    let mut config = scenario.config(protection_on, o)?;
    config.paired_with = paired_with;
    eprintln!(
        "harness: scenario {} with {} {}",
        scenario.name,
        scenario.protection,
        if protection_on { "on" } else { "off" }
    );
    let run = run::execute(config).await?;
    let outcome = run
        .results
        .as_ref()
        .and_then(|r| r.expectation.as_ref())
        .map_or(Outcome::Unknown, |e| e.outcome);
    print_outcome(scenario, protection_on, &run, outcome);
    Ok(ScenarioOutcome {
        run,
        protection_on,
        outcome,
    })
}

fn print_outcome(scenario: &Scenario, protection_on: bool, run: &RunOutcome, outcome: Outcome) {
    let verdict = run
        .results
        .as_ref()
        .map_or("not checked".to_owned(), |r| r.validity.to_string());
    let why = run
        .results
        .as_ref()
        .and_then(|r| r.expectation.as_ref())
        .map_or("the run was not checked".to_owned(), |e| e.line());
    eprintln!(
        "harness: scenario {} ({} {}): run verdict {verdict}; expectation {outcome} — {why}",
        scenario.name,
        scenario.protection,
        if protection_on { "on" } else { "off" },
    );
    eprintln!("harness: run directory {}", run.dir.display());
    println!(
        "{} {} verdict={verdict} expectation={}",
        scenario.folder(protection_on),
        run.dir.display(),
        outcome.as_str().replace(' ', "-")
    );
}

/// What `harness scenario run`'s options override; `seed` when they name none.
pub fn overrides(args: &ScenarioRunArgs, seed: u64) -> Overrides {
    Overrides {
        seed: Some(args.seed.unwrap_or(seed)),
        time_limit: args.time_limit,
        out: Some(args.out.clone()),
        pipeline_bin: args.pipeline_bin.clone(),
        faultproxy_bin: args.faultproxy_bin.clone(),
        cluster: args.cluster.choice(),
    }
}

async fn run_cmd(args: &ScenarioRunArgs) -> anyhow::Result<i32> {
    let scenario = find(&args.name)?;
    let o = overrides(args, rand::random());
    // Refuse bad input before anything starts.
    scenario.config(true, &o)?;
    scenario.config(false, &o)?;
    if !args.pair {
        let one = run_one(&scenario, !args.protection_off, &o, None).await?;
        return Ok(code_of(&[&one]));
    }
    let on = run_one(&scenario, true, &o, None).await?;
    if on.run.code == run::EXIT_INTERRUPTED {
        return Ok(run::EXIT_INTERRUPTED);
    }
    let on_id = run_id(&args.out, &on.run.dir);
    let off = run_one(&scenario, false, &o, Some(on_id)).await?;
    if off.run.code == run::EXIT_INTERRUPTED {
        return Ok(run::EXIT_INTERRUPTED);
    }
    compare(&on.run.dir, &off.run.dir);
    run::write_runs_index(&args.out);
    eprintln!(
        "harness: pair {}: protection on {}, off {}",
        scenario.name, on.outcome, off.outcome
    );
    Ok(code_of(&[&on, &off]))
}

/// Redraws the first run's report with the second on its retry-load graph (and, after a retry
/// storm, its goodput graph). The drawing is a convenience: failing it changes no outcome.
pub(crate) fn compare(on: &Path, off: &Path) {
    match checker::analyze_compared(on, Some(off), &checker::Params::default()) {
        Ok(_) => eprintln!(
            "harness: {} draws both runs on one retry-load graph (harness analyze {} --compare {})",
            on.join(formats::files::RETRY_LOAD_PNG).display(),
            on.display(),
            off.display()
        ),
        Err(e) => eprintln!("harness: comparison graph not drawn: {e}"),
    }
}

/// `<scenario>/<timestamp>` of a run directory under `out`, or the path itself.
pub(crate) fn run_id(out: &Path, dir: &Path) -> String {
    dir.strip_prefix(out)
        .unwrap_or(dir)
        .to_string_lossy()
        .into_owned()
}

/// The exit code of scenario runs: the worst expectation outcome (not held 1 > unknown 2 >
/// held 0).
fn code_of(outcomes: &[&ScenarioOutcome]) -> i32 {
    outcomes
        .iter()
        .fold(Outcome::Held, |acc, o| acc.and(o.outcome))
        .exit_code()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves the list names every scenario with its run options, both expectations and what
    /// switches the protection off.
    #[test]
    fn list_shows_options_and_expectations() {
        let text = list();
        for s in super::super::all() {
            assert!(text.contains(&format!("{} — proves {}", s.name, s.protection)));
            for w in s.off.flags() {
                assert!(text.contains(&w), "{w}");
            }
        }
        assert!(text.contains("--no-lease-check"));
        assert!(text.contains("kind=storm,role=payment"));
        assert!(text.contains("--inventory-mode eventual"));
        assert_eq!(text.matches("expects").count(), 10);
    }
}
