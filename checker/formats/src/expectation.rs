//! A scenario's expectation (`spec.json` field `expectation`): which checks must have which
//! validity, and which measured evidence must reach a minimum. It is data, so `harness analyze`
//! evaluates it again from the run directory alone; the checker evaluates each [`Measure`]
//! against the typed details of the check it names (`checker::expectation`), so a measure can
//! only name evidence a check's details really have.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::effects::{EffectViolation, Ledger, StepKind};
use crate::final_state::OrderStatus;
use crate::role::Role;
use crate::validity::Validity;

/// Most requirements one expectation holds.
pub const MAX_REQUIREMENTS: usize = 16;

/// The checks, by the name `results.json` gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CheckId {
    /// Operations pair up per process.
    History,
    /// Every order ends in a legal state with exactly its effects.
    Effects,
    /// One key, one effect record.
    Idempotency,
    /// No write accepted under a stale token.
    Fencing,
    /// Retries within the budget.
    RetryLoad,
    /// Which seam signal moved for each fault.
    Signals,
    /// Latency and throughput per phase.
    Perf,
    /// Stock operations are linearizable.
    Linearizability,
    /// Which alerting rules fired, evaluated over `metrics.csv` and compared with Prometheus's.
    Alerts,
}

impl CheckId {
    /// Every check, in the order they run and report.
    pub const ALL: [CheckId; 9] = [
        CheckId::History,
        CheckId::Effects,
        CheckId::Idempotency,
        CheckId::Fencing,
        CheckId::RetryLoad,
        CheckId::Signals,
        CheckId::Perf,
        CheckId::Linearizability,
        CheckId::Alerts,
    ];

    /// The name in `results.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckId::History => "history",
            CheckId::Effects => "effects",
            CheckId::Idempotency => "idempotency",
            CheckId::Fencing => "fencing",
            CheckId::RetryLoad => "retry-load",
            CheckId::Signals => "signals",
            CheckId::Perf => "perf",
            CheckId::Linearizability => "linearizability",
            CheckId::Alerts => "alerts",
        }
    }
}

impl fmt::Display for CheckId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for CheckId {
    type Err = String;

    fn from_str(s: &str) -> Result<CheckId, String> {
        CheckId::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| format!("no check '{s}'"))
    }
}

/// What a requirement is about: the composed verdict, or one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Subject {
    /// The run's composed verdict.
    Verdict,
    /// One check.
    Check(CheckId),
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Verdict => f.write_str("verdict"),
            Subject::Check(c) => f.write_str(c.as_str()),
        }
    }
}

impl FromStr for Subject {
    type Err = String;

    fn from_str(s: &str) -> Result<Subject, String> {
        if s == "verdict" {
            Ok(Subject::Verdict)
        } else {
            s.parse().map(Subject::Check)
        }
    }
}

impl Serialize for Subject {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Subject {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Subject, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// A number read from one check's typed details.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "measure", rename_all = "kebab-case")]
pub enum Measure {
    /// fencing: stale writes the replicas refused in `domain`.
    FencingRejected {
        /// The store domain (`order`, `payment`, `inventory`).
        domain: String,
    },
    /// fencing: writes accepted under a stale token in `domain`.
    FencingViolations {
        /// The store domain.
        domain: String,
    },
    /// idempotency: keys of `ledger` for `step` presented more than once, each with one
    /// record.
    RepeatedKeys {
        /// Which ledger.
        ledger: Ledger,
        /// Which step's keys.
        step: StepKind,
    },
    /// effects: violations of `kind`.
    EffectViolations {
        /// Which kind.
        kind: EffectViolation,
    },
    /// effects: orders that ended with `status`.
    OrdersWithStatus {
        /// The final status.
        status: OrderStatus,
    },
    /// retry-load: retries to `downstream` the budget refused, summed over callers.
    RetriesRefused {
        /// The called service.
        downstream: Role,
    },
    /// retry-load: caller windows whose retries exceeded the budget.
    WindowsOverBudget,
    /// retry-load: the highest amplification at payment over the storm windows (requests
    /// arrived / distinct idempotency keys while the storm stood).
    StormAmplification,
    /// retry-load: the least headroom under the budget's bound over the storm windows (bound
    /// minus amplification; negative when over).
    AmplificationHeadroom,
}

impl Measure {
    /// The check whose details it reads.
    pub fn check(&self) -> CheckId {
        match self {
            Measure::FencingRejected { .. } | Measure::FencingViolations { .. } => CheckId::Fencing,
            Measure::RepeatedKeys { .. } => CheckId::Idempotency,
            Measure::EffectViolations { .. } | Measure::OrdersWithStatus { .. } => CheckId::Effects,
            Measure::RetriesRefused { .. }
            | Measure::WindowsOverBudget
            | Measure::StormAmplification
            | Measure::AmplificationHeadroom => CheckId::RetryLoad,
        }
    }
}

/// Evidence that must be present: a measure at least `at_least`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// What it counts, for people: "stale order writes rejected".
    pub what: String,
    /// Where it is read.
    #[serde(flatten)]
    pub measure: Measure,
    /// The least value that counts as present.
    pub at_least: f64,
}

/// One requirement: a check (or the composed verdict) has a validity, and optionally a
/// measure of that check's details reaches a minimum.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Requirement {
    /// A check, or the composed verdict.
    pub check: Subject,
    /// The validity it must have.
    pub validity: Validity,
    /// Evidence in its details that must be present (a measure of this same check).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Evidence>,
}

impl Requirement {
    /// `subject` has `validity`.
    pub fn is(subject: Subject, validity: Validity) -> Requirement {
        Requirement {
            check: subject,
            validity,
            evidence: None,
        }
    }

    /// The check `measure` reads has `validity`, and `measure` is at least `at_least`.
    pub fn with(validity: Validity, what: &str, measure: Measure, at_least: f64) -> Requirement {
        Requirement {
            check: Subject::Check(measure.check()),
            validity,
            evidence: Some(Evidence {
                what: what.to_owned(),
                measure,
                at_least,
            }),
        }
    }

    /// Why it is malformed, if it is: evidence that reads another check than the one named.
    pub fn problem(&self) -> Option<String> {
        let e = self.evidence.as_ref()?;
        (Subject::Check(e.measure.check()) != self.check).then(|| {
            format!(
                "requirement on {} measures {} of {}",
                self.check,
                e.what,
                e.measure.check()
            )
        })
    }
}

/// What a scenario expects of its run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Expectation {
    /// The scenario's name, e.g. `stale-leader`.
    pub scenario: String,
    /// The protection it proves, e.g. `fencing`.
    pub protection: String,
    /// Whether the protection was on in this run.
    pub protection_on: bool,
    /// One sentence: what must be seen, and why.
    pub claim: String,
    /// Every requirement must hold.
    pub requirements: Vec<Requirement>,
}

impl Expectation {
    /// Why it is malformed, if it is: no requirement, too many, or one that is malformed.
    pub fn problem(&self) -> Option<String> {
        if self.requirements.is_empty() || self.requirements.len() > MAX_REQUIREMENTS {
            return Some(format!(
                "1 to {MAX_REQUIREMENTS} requirements, found {}",
                self.requirements.len()
            ));
        }
        self.requirements.iter().find_map(Requirement::problem)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves a requirement serializes with its check by name and its measure typed, reads
    /// back equal, and evidence of another check than the one named is a problem.
    #[test]
    fn requirements_round_trip_and_are_checked() {
        let r = Requirement::with(
            Validity::Valid,
            "stale order writes rejected",
            Measure::FencingRejected {
                domain: "order".into(),
            },
            1.0,
        );
        let json = serde_json::to_value(&r).expect("serializes");
        assert_eq!(json["check"], "fencing");
        assert_eq!(json["evidence"]["measure"], "fencing-rejected");
        assert_eq!(json["evidence"]["domain"], "order");
        assert_eq!(
            serde_json::from_value::<Requirement>(json).expect("reads"),
            r
        );
        assert_eq!(r.problem(), None);
        let mut wrong = r.clone();
        wrong.check = Subject::Check(CheckId::Effects);
        assert!(wrong.problem().is_some());
        let v = Requirement::is(Subject::Verdict, Validity::Invalid);
        let json = serde_json::to_value(&v).expect("serializes");
        assert_eq!(
            json,
            serde_json::json!({"check": "verdict", "validity": "invalid"})
        );
        assert!(serde_json::from_value::<Requirement>(
            serde_json::json!({"check": "nope", "validity": "valid"})
        )
        .is_err());
    }
}
