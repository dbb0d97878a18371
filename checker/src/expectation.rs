//! A scenario's expectation (`spec.json` field `expectation`, typed in
//! [`formats::expectation`]) and its evaluation against the checks' results.
//!
//! A named scenario proves one protection. With the protection on it expects the checks to
//! show the protection working (e.g. the fencing check valid *and* listing rejected stale
//! writes); with it off it expects a named check to turn invalid. Each evidence [`Measure`] is
//! read from the typed details of the check it belongs to, so a measure names a field the
//! compiler knows. Whether the expectation held is a verdict about the tool's proof, distinct
//! from the run's own verdict: a run without fencing is invalid, and that is exactly what its
//! expectation asks for.

use serde::{Deserialize, Serialize};

pub use formats::expectation::{
    CheckId, Evidence, Expectation, Measure, Requirement, Subject, MAX_REQUIREMENTS,
};

use crate::checks::{Effects, Fencing, Idempotency, RetryLoad};
use crate::verdict::{Results, Validity};

/// Whether an expectation held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Every requirement held.
    Held,
    /// A requirement did not hold.
    NotHeld,
    /// Something could not be told (a check unknown or missing, evidence unreadable).
    Unknown,
}

impl Outcome {
    fn rank(self) -> u8 {
        match self {
            Outcome::Held => 0,
            Outcome::Unknown => 1,
            Outcome::NotHeld => 2,
        }
    }

    /// The worse of two outcomes (not held > unknown > held).
    pub fn and(self, other: Outcome) -> Outcome {
        if other.rank() > self.rank() {
            other
        } else {
            self
        }
    }

    /// Exit code of `harness scenario run`: 0 held, 1 not held, 2 unknown.
    pub fn exit_code(self) -> i32 {
        match self {
            Outcome::Held => 0,
            Outcome::NotHeld => 1,
            Outcome::Unknown => 2,
        }
    }

    /// `held`, `not held` or `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Held => "held",
            Outcome::NotHeld => "not held",
            Outcome::Unknown => "unknown",
        }
    }

    /// As a validity (held → valid, not held → invalid), for composing job results.
    pub fn as_validity(self) -> Validity {
        match self {
            Outcome::Held => Validity::Valid,
            Outcome::NotHeld => Validity::Invalid,
            Outcome::Unknown => Validity::Unknown,
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How one requirement fared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequirementResult {
    /// The requirement.
    #[serde(flatten)]
    pub requirement: Requirement,
    /// The validity found (`None` when the check is not in the results).
    pub found: Option<Validity>,
    /// The measured evidence, if any was asked for and could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured: Option<f64>,
    /// Its outcome.
    pub outcome: Outcome,
    /// Why, in one line.
    pub why: String,
}

/// The expectation with its outcome (`results.json` field `expectation`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExpectationResult {
    /// Worst of the requirements.
    pub outcome: Outcome,
    /// Scenario name.
    pub scenario: String,
    /// The protection proved.
    pub protection: String,
    /// Whether it was on.
    pub protection_on: bool,
    /// What must be seen.
    pub claim: String,
    /// Each requirement with what was found.
    pub requirements: Vec<RequirementResult>,
}

impl ExpectationResult {
    /// One line: `stale-leader (fencing on): held — ...`.
    pub fn line(&self) -> String {
        let first_failed = self
            .requirements
            .iter()
            .find(|r| r.outcome != Outcome::Held)
            .map(|r| r.why.clone());
        format!(
            "{} ({} {}): {}{}",
            self.scenario,
            self.protection,
            if self.protection_on { "on" } else { "off" },
            self.outcome,
            first_failed.map_or(String::new(), |w| format!(" — {w}"))
        )
    }
}

/// The value of `m` in `results`, read from the typed details of the check it names; an error
/// says why it cannot be read (the check is missing or its details have another shape).
pub fn measure(m: &Measure, results: &Results) -> Result<f64, String> {
    let missing = || format!("no readable {} details in the results", m.check());
    Ok(match m {
        Measure::FencingRejected { domain } => {
            let (_, d) = results.check::<Fencing>().ok_or_else(missing)?;
            d.rejected_by_domain.get(domain).copied().unwrap_or(0) as f64
        }
        Measure::FencingViolations { domain } => {
            let (_, d) = results.check::<Fencing>().ok_or_else(missing)?;
            d.violations.iter().filter(|v| &v.domain == domain).count() as f64
        }
        Measure::RepeatedKeys { ledger, step } => {
            let (_, d) = results.check::<Idempotency>().ok_or_else(missing)?;
            d.repeated_keys
                .iter()
                .filter(|k| {
                    k.ledger == *ledger
                        && formats::effects::parse_effect_key(&k.key)
                            .is_some_and(|(_, s)| s.kind == *step)
                })
                .count() as f64
        }
        Measure::EffectViolations { kind } => {
            let (_, d) = results.check::<Effects>().ok_or_else(missing)?;
            d.violation_counts.get(kind).copied().unwrap_or(0) as f64
        }
        Measure::OrdersWithStatus { status } => {
            let (_, d) = results.check::<Effects>().ok_or_else(missing)?;
            d.by_status.get(status).copied().unwrap_or(0) as f64
        }
        Measure::RetriesRefused { downstream } => {
            let (_, d) = results.check::<RetryLoad>().ok_or_else(missing)?;
            d.per_downstream
                .iter()
                .filter(|t| t.downstream == downstream.as_str())
                .map(|t| t.refused)
                .sum()
        }
        Measure::WindowsOverBudget => {
            let (_, d) = results.check::<RetryLoad>().ok_or_else(missing)?;
            d.over_budget_total as f64
        }
        Measure::StormAmplification => {
            let (_, d) = results.check::<RetryLoad>().ok_or_else(missing)?;
            d.amplification
                .iter()
                .filter_map(|a| a.amplification)
                .reduce(f64::max)
                .ok_or_else(|| "no storm window with arrivals at payment".to_owned())?
        }
        Measure::AmplificationHeadroom => {
            let (_, d) = results.check::<RetryLoad>().ok_or_else(missing)?;
            d.amplification
                .iter()
                .filter_map(|a| Some(a.bound? - a.amplification?))
                .reduce(f64::min)
                .ok_or_else(|| "no storm window with a budget bound".to_owned())?
        }
    })
}

fn evaluate_one(r: &Requirement, results: &Results) -> RequirementResult {
    let found = match r.check {
        Subject::Verdict => Some(results.validity),
        Subject::Check(id) => results.get(id).map(|c| c.validity),
    };
    let done = |outcome, measured, why: String| RequirementResult {
        requirement: r.clone(),
        found,
        measured,
        outcome,
        why,
    };
    if let Some(problem) = r.problem() {
        return done(Outcome::Unknown, None, problem);
    }
    let Some(found) = found else {
        return done(
            Outcome::Unknown,
            None,
            format!("no check '{}' in the results", r.check),
        );
    };
    if found != r.validity {
        let outcome = if found == Validity::Unknown {
            Outcome::Unknown
        } else {
            Outcome::NotHeld
        };
        return done(
            outcome,
            None,
            format!("{} is {found}, expected {}", r.check, r.validity),
        );
    }
    let Some(e) = &r.evidence else {
        return done(Outcome::Held, None, format!("{} is {found}", r.check));
    };
    match measure(&e.measure, results) {
        Ok(n) if n >= e.at_least => done(
            Outcome::Held,
            Some(n),
            format!("{} is {found} with {n} {}", r.check, e.what),
        ),
        Ok(n) => done(
            Outcome::NotHeld,
            Some(n),
            format!(
                "{} is {found} but shows {n} {} (at least {} expected)",
                r.check, e.what, e.at_least
            ),
        ),
        Err(why) => done(
            Outcome::Unknown,
            None,
            format!("{}: {} cannot be read: {why}", r.check, e.what),
        ),
    }
}

/// Evaluates `e` against `results`: every requirement, composed (not held > unknown > held).
/// A malformed expectation (no requirement, too many) is unknown.
pub fn evaluate(e: &Expectation, results: &Results) -> ExpectationResult {
    let mut requirements: Vec<RequirementResult> = e
        .requirements
        .iter()
        .take(MAX_REQUIREMENTS)
        .map(|r| evaluate_one(r, results))
        .collect();
    let mut outcome = requirements
        .iter()
        .fold(Outcome::Held, |acc, r| acc.and(r.outcome));
    if let Some(problem) = e.problem() {
        outcome = outcome.and(Outcome::Unknown);
        if requirements.is_empty() {
            requirements.push(RequirementResult {
                requirement: Requirement::is(Subject::Verdict, Validity::Valid),
                found: None,
                measured: None,
                outcome: Outcome::Unknown,
                why: format!("spec.json expectation: {problem}"),
            });
        }
    }
    ExpectationResult {
        outcome,
        scenario: e.scenario.clone(),
        protection: e.protection.clone(),
        protection_on: e.protection_on,
        claim: e.claim.clone(),
        requirements,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use formats::effects::{EffectViolation, Ledger, StepKind};
    use formats::Role;

    use super::*;
    use crate::check::Verdict;
    use crate::checks::{fencing, idempotency, retry_load};
    use crate::verdict::CheckResult;

    fn fencing_result(validity: Validity, rejected_order: Option<u64>) -> Results {
        let mut d = fencing::Details {
            applicable: true,
            ..Default::default()
        };
        if let Some(n) = rejected_order {
            d.rejected_by_domain.insert("order".into(), n);
        }
        Results::new(
            "s/1".into(),
            vec![CheckResult::of::<Fencing>(Verdict::new(validity, "", d))],
        )
    }

    fn expect(validity: Validity, evidence: bool) -> Expectation {
        let r = if evidence {
            Requirement::with(
                validity,
                "stale order writes rejected",
                Measure::FencingRejected {
                    domain: "order".into(),
                },
                1.0,
            )
        } else {
            Requirement::is(Subject::Check(CheckId::Fencing), validity)
        };
        Expectation {
            scenario: "stale-leader".into(),
            protection: "fencing".into(),
            protection_on: validity == Validity::Valid,
            claim: "c".into(),
            requirements: vec![r],
        }
    }

    /// Proves an expectation holds only with the validity and the evidence it names: the
    /// right validity without evidence is "not held", the wrong one is "not held", an unknown
    /// check or a missing one is "unknown", and a count map lacking the key counts zero.
    #[test]
    fn holds_only_with_validity_and_evidence() {
        let e = expect(Validity::Valid, true);
        let held = evaluate(&e, &fencing_result(Validity::Valid, Some(3)));
        assert_eq!(held.outcome, Outcome::Held, "{held:?}");
        assert_eq!(held.requirements[0].measured, Some(3.0));
        let r = evaluate(&e, &fencing_result(Validity::Valid, None));
        assert_eq!(r.outcome, Outcome::NotHeld, "{r:?}");
        assert_eq!(r.requirements[0].measured, Some(0.0));
        let r = evaluate(&e, &fencing_result(Validity::Invalid, Some(3)));
        assert_eq!(r.outcome, Outcome::NotHeld);
        let r = evaluate(&e, &fencing_result(Validity::Unknown, Some(3)));
        assert_eq!(r.outcome, Outcome::Unknown);
        let mut missing = expect(Validity::Invalid, false);
        missing.requirements[0].check = Subject::Check(CheckId::Perf);
        let r = evaluate(&missing, &fencing_result(Validity::Valid, Some(3)));
        assert_eq!(r.outcome, Outcome::Unknown, "{r:?}");
        let off = expect(Validity::Invalid, false);
        let r = evaluate(&off, &fencing_result(Validity::Invalid, None));
        assert_eq!(r.outcome, Outcome::Held);
        assert!(r.line().contains("fencing off): held"), "{}", r.line());
    }

    /// Proves details of another shape than the check's (e.g. a results.json edited by hand,
    /// or written by another version) make the measure unknown, never a silent zero, and that
    /// an expectation without requirements is unknown.
    #[test]
    fn unreadable_evidence_and_empty_expectations_are_unknown() {
        let mut results = fencing_result(Validity::Valid, Some(3));
        results.checks[0].details = serde_json::json!({"rejected_by_domain": "lots"});
        let r = evaluate(&expect(Validity::Valid, true), &results);
        assert_eq!(r.outcome, Outcome::Unknown, "{r:?}");
        let mut empty = expect(Validity::Valid, true);
        empty.requirements.clear();
        let r = evaluate(&empty, &fencing_result(Validity::Valid, Some(3)));
        assert_eq!(r.outcome, Outcome::Unknown, "{r:?}");
    }

    /// Proves each measure reads its typed field: repeated keys filtered by ledger and step,
    /// violations by kind, orders by status, refused retries by downstream and windows over
    /// the budget.
    #[test]
    fn every_measure_reads_its_field() {
        let key = |ledger, key: &str, calls| idempotency::KeyUse {
            ledger,
            key: key.into(),
            calls,
            records: 1,
            order_ids: vec!["o1".into()],
        };
        let idem = idempotency::Details {
            repeated_keys: vec![
                key(Ledger::Payments, "o1:refund", 3),
                key(Ledger::Payments, "o2:charge", 2),
                key(Ledger::Shipments, "o1:ship", 5),
            ],
            ..Default::default()
        };
        let effects = crate::checks::effects::Details {
            violation_counts: BTreeMap::from([(EffectViolation::DoubleCharge, 2)]),
            by_status: BTreeMap::from([(formats::final_state::OrderStatus::Compensated, 4)]),
            ..Default::default()
        };
        let retry = retry_load::Details {
            params: retry_load::UsedParams {
                budget: Default::default(),
                recovery: Default::default(),
            },
            budget_on: true,
            baseline_ok_per_s: None,
            recovery: Vec::new(),
            per_downstream: vec![retry_load::DownstreamTotal {
                downstream: "payment".into(),
                callers: 3,
                requests: 10.0,
                retries: 2.0,
                refused: 7.0,
                attempts_per_request: None,
                retry_share: None,
            }],
            windows: Vec::new(),
            over_budget: Vec::new(),
            over_budget_total: 5,
            amplification: Vec::new(),
            goodput: None,
            log_errors: Vec::new(),
        };
        let results = Results::new(
            "s/1".into(),
            vec![
                CheckResult::of::<Idempotency>(Verdict::new(Validity::Valid, "", idem)),
                CheckResult::of::<Effects>(Verdict::new(Validity::Invalid, "", effects)),
                CheckResult::of::<RetryLoad>(Verdict::new(Validity::Valid, "", retry)),
            ],
        );
        for (m, want) in [
            (
                Measure::RepeatedKeys {
                    ledger: Ledger::Payments,
                    step: StepKind::Refund,
                },
                1.0,
            ),
            (
                Measure::RepeatedKeys {
                    ledger: Ledger::Payments,
                    step: StepKind::Ship,
                },
                0.0,
            ),
            (
                Measure::EffectViolations {
                    kind: EffectViolation::DoubleCharge,
                },
                2.0,
            ),
            (
                Measure::EffectViolations {
                    kind: EffectViolation::DoubleRefund,
                },
                0.0,
            ),
            (
                Measure::OrdersWithStatus {
                    status: formats::final_state::OrderStatus::Compensated,
                },
                4.0,
            ),
            (
                Measure::RetriesRefused {
                    downstream: Role::Payment,
                },
                7.0,
            ),
            (Measure::WindowsOverBudget, 5.0),
        ] {
            assert_eq!(measure(&m, &results), Ok(want), "{m:?}");
        }
        assert!(measure(
            &Measure::FencingRejected {
                domain: "order".into()
            },
            &results
        )
        .is_err());
    }
}
