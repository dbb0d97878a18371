//! Named scenarios: each a preset of `harness run` options (faults with their targets and
//! timing, workload, pipeline switches) together with the expectation that proves one
//! protection — and, with the protection switched off, the check that must then fail.
//!
//! A scenario does not have a run lifecycle of its own: it builds [`RunArgs`] from its words
//! exactly as `harness run` would parse them, adds its expectation (written to `spec.json`,
//! evaluated by the checker into `results.json`) and calls [`crate::run::execute`].

mod catalog;
pub mod runner;

use std::path::PathBuf;
use std::time::Duration;

use checker::expectation::{Evidence, Expectation, Requirement};
use checker::Validity;
use clap::Parser;

use crate::cli::RunArgs;
use crate::BadInput;

pub use catalog::all;

/// One named scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Its name (`harness scenario run NAME`), also the runs' `--scenario` folder.
    pub name: &'static str,
    /// The protection it proves.
    pub protection: &'static str,
    /// What it does, for `harness scenario list`.
    pub about: &'static str,
    /// `harness run` options with the protection on.
    pub words: &'static [&'static str],
    /// Options added to switch the protection off.
    pub off_words: &'static [&'static str],
    /// What must be seen with the protection on, and why.
    pub claim_on: &'static str,
    /// What must be seen with it off, and why.
    pub claim_off: &'static str,
    /// Requirements with the protection on.
    pub on: fn() -> Vec<Requirement>,
    /// Requirements with the protection off.
    pub off: fn() -> Vec<Requirement>,
}

/// The `harness run` options, parsed by the same definition the `run` subcommand uses.
#[derive(Debug, Parser)]
#[command(name = "harness run", no_binary_name = true)]
struct RunWords {
    #[command(flatten)]
    run: RunArgs,
}

/// Parses `harness run` options (without `harness run` itself); the error is clap's first
/// line.
pub fn parse_run_words<S: AsRef<str>>(words: &[S]) -> Result<RunArgs, String> {
    RunWords::try_parse_from(words.iter().map(AsRef::as_ref))
        .map(|w| w.run)
        .map_err(|e| e.to_string().lines().next().unwrap_or_default().to_owned())
}

/// What a user may change about a scenario run.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// The seed.
    pub seed: Option<u64>,
    /// The workload length (its faults must still heal before it).
    pub time_limit: Option<Duration>,
    /// Where runs go.
    pub out: Option<PathBuf>,
    /// The pipeline binary.
    pub pipeline_bin: Option<PathBuf>,
}

/// The scenario called `name`, or a bad-input error listing the names.
pub fn find(name: &str) -> Result<Scenario, BadInput> {
    all().into_iter().find(|s| s.name == name).ok_or_else(|| {
        let names: Vec<&str> = all().iter().map(|s| s.name).collect();
        BadInput(format!(
            "no scenario '{name}' (known: {})",
            names.join(", ")
        ))
    })
}

impl Scenario {
    /// The `--scenario` folder of its runs: the name, with `-off` when the protection is off.
    pub fn folder(&self, protection_on: bool) -> String {
        if protection_on {
            self.name.to_owned()
        } else {
            format!("{}-off", self.name)
        }
    }

    /// Its `harness run` words with the protection on or off.
    pub fn run_words(&self, protection_on: bool) -> Vec<&'static str> {
        let mut words = self.words.to_vec();
        if !protection_on {
            words.extend_from_slice(self.off_words);
        }
        words
    }

    /// The expectation of a run with the protection on or off.
    pub fn expectation(&self, protection_on: bool) -> Expectation {
        Expectation {
            scenario: self.name.to_owned(),
            protection: self.protection.to_owned(),
            protection_on,
            claim: if protection_on {
                self.claim_on
            } else {
                self.claim_off
            }
            .to_owned(),
            requirements: if protection_on {
                (self.on)()
            } else {
                (self.off)()
            },
        }
    }

    /// The run's arguments: its words parsed as `harness run` would, then the overrides, the
    /// folder and the expectation. Errors are bad input (exit 254).
    pub fn run_args(&self, protection_on: bool, o: &Overrides) -> Result<RunArgs, BadInput> {
        let words = self.run_words(protection_on);
        let mut args = parse_run_words(&words).map_err(|e| {
            BadInput(format!(
                "scenario '{}': its options do not parse: {e}",
                self.name
            ))
        })?;
        args.scenario = self.folder(protection_on);
        args.seed = o.seed.or(args.seed);
        if let Some(t) = o.time_limit {
            args.time_limit = t;
        }
        if let Some(out) = &o.out {
            args.out = out.clone();
        }
        if let Some(bin) = &o.pipeline_bin {
            args.pipeline_bin = Some(bin.clone());
        }
        args.expectation = Some(self.expectation(protection_on));
        args.validate()
            .map_err(|m| BadInput(format!("scenario '{}': {m}", self.name)))?;
        Ok(args)
    }
}

/// Requirement: `check` has `validity`.
pub(crate) fn is(check: &str, validity: Validity) -> Requirement {
    Requirement {
        check: check.to_owned(),
        validity,
        evidence: None,
    }
}

/// Requirement: `check` has `validity` and the number at `pointer` in its details is at least
/// `at_least`.
pub(crate) fn with(
    check: &str,
    validity: Validity,
    what: &str,
    pointer: &str,
    at_least: f64,
) -> Requirement {
    Requirement {
        check: check.to_owned(),
        validity,
        evidence: Some(Evidence {
            what: what.to_owned(),
            pointer: pointer.to_owned(),
            filter: Vec::new(),
            sum: None,
            at_least,
        }),
    }
}

/// As [`with`], for a list: its items whose fields contain the `filter` substrings, counted,
/// or with `sum` a field summed over them.
pub(crate) fn with_items(
    check: &str,
    validity: Validity,
    what: &str,
    pointer: &str,
    filter: &[(&str, &str)],
    sum: Option<&str>,
) -> Requirement {
    Requirement {
        check: check.to_owned(),
        validity,
        evidence: Some(Evidence {
            what: what.to_owned(),
            pointer: pointer.to_owned(),
            filter: filter
                .iter()
                .map(|(f, v)| ((*f).to_owned(), (*v).to_owned()))
                .collect(),
            sum: sum.map(str::to_owned),
            at_least: 1.0,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves every scenario's options parse as `harness run` options in both modes, its
    /// faults heal before its time limit, switching the protection off only adds flags, the
    /// expectation says which mode it is, and a time limit shorter than the faults is refused.
    #[test]
    fn every_scenario_builds_valid_run_arguments() {
        let o = Overrides::default();
        let names: Vec<&str> = all().iter().map(|s| s.name).collect();
        assert_eq!(
            names,
            [
                "stale-leader",
                "lost-response",
                "retried-compensation",
                "retry-storm"
            ]
        );
        for s in all() {
            let on = s.run_args(true, &o).expect("on parses");
            let off = s.run_args(false, &o).expect("off parses");
            assert!(!on.faults.is_empty(), "{}: explicit faults", s.name);
            assert_eq!(on.faults, off.faults, "{}: same faults both ways", s.name);
            assert_eq!(off.scenario, format!("{}-off", s.name));
            let on_e = on.expectation.expect("expectation");
            assert!(on_e.protection_on && !on_e.requirements.is_empty());
            assert!(!off.expectation.expect("expectation").protection_on);
            assert!(
                !s.off_words.is_empty(),
                "{}: off switches something",
                s.name
            );
            let short = Overrides {
                time_limit: Some(Duration::from_secs(2)),
                ..Overrides::default()
            };
            let e = s.run_args(true, &short).expect_err("too short");
            assert!(e.0.contains("--time-limit"), "{e}");
        }
        let e = find("no-such").expect_err("unknown");
        assert!(
            e.0.contains("'no-such'") && e.0.contains("stale-leader"),
            "{e}"
        );
    }
}
