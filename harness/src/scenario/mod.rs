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

use formats::expectation::{Expectation, Requirement};
use formats::spec::{ClusterKind, InventoryMode, RunConfig, Switches};

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
    /// The run with the protection on (its folder, seed and expectation are set by
    /// [`Scenario::config`]).
    pub base: fn() -> RunConfig,
    /// What turns the protection off.
    pub off: Off,
    /// What must be seen with the protection on, and why.
    pub claim_on: &'static str,
    /// What must be seen with it off, and why.
    pub claim_off: &'static str,
    /// Requirements with the protection on.
    pub on_requirements: fn() -> Vec<Requirement>,
    /// Requirements with the protection off.
    pub off_requirements: fn() -> Vec<Requirement>,
}

/// What turns a scenario's protection off: pipeline switches, or a weaker consistency model
/// for a piece of state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Off {
    /// Protections switched off.
    pub switches: Switches,
    /// Inventory run in this mode instead.
    pub inventory_mode: Option<InventoryMode>,
}

impl Off {
    /// The `harness run` flags it adds: `--no-fencing`, `--inventory-mode eventual`.
    pub fn flags(&self) -> Vec<String> {
        let mut flags: Vec<String> = self
            .switches
            .names()
            .iter()
            .map(|n| format!("--{n}"))
            .collect();
        if let Some(mode) = self.inventory_mode {
            flags.push(format!("--inventory-mode {}", mode.as_str()));
        }
        flags
    }

    /// `config` with this protection off.
    fn apply(&self, config: &mut RunConfig) {
        config.switches = with_switches(config.switches, self.switches);
        if let Some(mode) = self.inventory_mode {
            config.inventory_mode = Some(mode);
        }
    }
}

/// Where a scenario runs, when not on the default local cluster (`--cluster`, `--nodes`,
/// `--nodes-file`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterChoice {
    /// The kind of cluster.
    pub cluster: ClusterKind,
    /// Nodes of a local or netns cluster.
    pub nodes: Option<u16>,
    /// The nodes file of an SSH cluster.
    pub nodes_file: Option<PathBuf>,
}

/// What a user may change about a scenario run (`harness scenario run`'s options).
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
    /// The faultproxy binary.
    pub faultproxy_bin: Option<PathBuf>,
    /// Where it runs (default: the scenario's own, a local cluster).
    pub cluster: Option<ClusterChoice>,
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

/// `on` with every switch `off` sets added.
fn with_switches(on: Switches, off: Switches) -> Switches {
    Switches {
        no_idempotency: on.no_idempotency || off.no_idempotency,
        no_fencing: on.no_fencing || off.no_fencing,
        no_retry_budget: on.no_retry_budget || off.no_retry_budget,
        no_compensation: on.no_compensation || off.no_compensation,
        no_lease_check: on.no_lease_check || off.no_lease_check,
    }
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
                (self.on_requirements)()
            } else {
                (self.off_requirements)()
            },
        }
    }

    /// The run: its base, the protection switched off if asked, the overrides, the folder and
    /// the expectation. Errors are bad input (exit 254).
    pub fn config(&self, protection_on: bool, o: &Overrides) -> Result<RunConfig, BadInput> {
        let mut c = (self.base)();
        if !protection_on {
            self.off.apply(&mut c);
        }
        c.scenario = self.folder(protection_on);
        c.seed = o.seed.or(c.seed);
        if let Some(t) = o.time_limit {
            c.time_limit = t;
        }
        if let Some(out) = &o.out {
            c.out = out.clone();
        }
        if let Some(bin) = &o.pipeline_bin {
            c.pipeline_bin = Some(bin.clone());
        }
        if let Some(bin) = &o.faultproxy_bin {
            c.faultproxy_bin = Some(bin.clone());
        }
        if let Some(choice) = &o.cluster {
            c.cluster = choice.cluster;
            c.nodes = choice.nodes.or(c.nodes);
            c.nodes_file = choice.nodes_file.clone().or(c.nodes_file);
        }
        c.expectation = Some(self.expectation(protection_on));
        let c = c.canonical();
        crate::config::validate(&c)
            .map_err(|m| BadInput(format!("scenario '{}': {m}", self.name)))?;
        Ok(c)
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
                "retry-storm",
                "consistency"
            ]
        );
        for s in all() {
            let on = s.config(true, &o).expect("on builds");
            let off = s.config(false, &o).expect("off builds");
            assert!(!on.faults.is_empty(), "{}: explicit faults", s.name);
            assert_eq!(on.faults, off.faults, "{}: same faults both ways", s.name);
            assert_eq!(off.scenario, format!("{}-off", s.name));
            let on_e = on.expectation.clone().expect("expectation");
            assert!(on_e.protection_on && !on_e.requirements.is_empty());
            assert_eq!(on_e.problem(), None, "{}", s.name);
            let off_e = off.expectation.clone().expect("expectation");
            assert!(!off_e.protection_on);
            assert_eq!(off_e.problem(), None, "{}", s.name);
            assert!(
                !s.off.flags().is_empty(),
                "{}: off switches something",
                s.name
            );
            let mut only_switches = off.clone();
            only_switches.switches = on.switches;
            only_switches.inventory_mode = on.inventory_mode;
            only_switches.scenario = on.scenario.clone();
            only_switches.expectation = on.expectation.clone();
            assert_eq!(
                only_switches, on,
                "{}: off differs only in what it switches off",
                s.name
            );
            let short = Overrides {
                time_limit: Some(Duration::from_secs(2)),
                ..Overrides::default()
            };
            let e = s.config(true, &short).expect_err("too short");
            assert!(e.0.contains("--time-limit"), "{e}");
        }
        let e = find("no-such").expect_err("unknown");
        assert!(
            e.0.contains("'no-such'") && e.0.contains("stale-leader"),
            "{e}"
        );
    }
}
