//! A scenario's expectation (`spec.json` field `expectation`, docs/contracts.md §8) and its
//! evaluation against the checks' results.
//!
//! A named scenario proves one protection. With the protection on it expects the checks to
//! show the protection working (e.g. the fencing check valid *and* listing rejected stale
//! writes); with it off it expects a named check to turn invalid. The expectation is data, so
//! `harness analyze` and the report evaluate it again from the run directory alone. Whether it
//! held is a verdict about the tool's proof, distinct from the run's own verdict: a run without
//! fencing is invalid, and that is exactly what its expectation asks for.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::verdict::{Results, Validity};

/// The pseudo check name that means the run's composed verdict.
pub const VERDICT: &str = "verdict";
/// Most requirements one expectation holds.
pub const MAX_REQUIREMENTS: usize = 16;
/// Most array items a measure looks at.
const MAX_ITEMS: usize = 100_000;

/// What a scenario expects of its run (`spec.json` `expectation`).
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

/// One requirement: a check (or the composed verdict) has a validity, and optionally a
/// measure of its details reaches a minimum.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Requirement {
    /// A check name from `results.json`, or `verdict` for the composed verdict.
    pub check: String,
    /// The validity it must have.
    pub validity: Validity,
    /// Evidence in its details that must be present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Evidence>,
}

/// A number read from a check's details that must be at least `at_least`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// What it counts, for people: "stale order writes rejected".
    pub what: String,
    /// JSON pointer into the check's `details` (RFC 6901), e.g. `/rejected_by_domain/order`.
    pub pointer: String,
    /// For an array: only items whose fields contain these substrings (field → substring).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filter: Vec<(String, String)>,
    /// For an array: sum this numeric field of the matching items instead of counting them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sum: Option<String>,
    /// The least value that counts as present.
    pub at_least: f64,
}

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

    /// As a validity (held → valid, not held → invalid), for composing nightly results.
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

/// Reads the expectation from a spec: `None` when the run has none, an error line when the
/// field is there but malformed.
pub fn from_spec(spec: &Value) -> Option<Result<Expectation, String>> {
    let v = spec.get("expectation").filter(|v| !v.is_null())?;
    Some(
        serde_json::from_value::<Expectation>(v.clone())
            .map_err(|e| format!("spec.json expectation: {e}"))
            .and_then(|e| {
                if e.requirements.is_empty() || e.requirements.len() > MAX_REQUIREMENTS {
                    Err(format!(
                        "spec.json expectation: 1 to {MAX_REQUIREMENTS} requirements, found {}",
                        e.requirements.len()
                    ))
                } else {
                    Ok(e)
                }
            }),
    )
}

fn matches(item: &Value, filter: &[(String, String)]) -> bool {
    filter.iter().all(|(field, want)| match item.get(field) {
        Some(Value::String(s)) => s.contains(want.as_str()),
        Some(other) => other.to_string().contains(want.as_str()),
        None => false,
    })
}

/// The measured value of `e` in `details`, or why it cannot be read.
pub fn measure(e: &Evidence, details: &Value) -> Result<f64, String> {
    match details.pointer(&e.pointer) {
        Some(Value::Number(n)) => n
            .as_f64()
            .ok_or_else(|| format!("{} is not a number", e.pointer)),
        Some(Value::Array(items)) => {
            let matching = items
                .iter()
                .take(MAX_ITEMS)
                .filter(|i| matches(i, &e.filter));
            Ok(match &e.sum {
                Some(field) => matching
                    .filter_map(|i| i.get(field).and_then(Value::as_f64))
                    .sum(),
                None => matching.count() as f64,
            })
        }
        // A count map without the key (e.g. no violation of that kind) counts zero.
        None if parent_is_object(details, &e.pointer) => Ok(0.0),
        Some(other) => Err(format!("{} is {other}, not a number or a list", e.pointer)),
        None => Err(format!("{} is not in the details", e.pointer)),
    }
}

fn parent_is_object(details: &Value, pointer: &str) -> bool {
    pointer
        .rsplit_once('/')
        .and_then(|(parent, _)| (!parent.is_empty()).then(|| details.pointer(parent))?)
        .is_some_and(Value::is_object)
}

fn evaluate_one(r: &Requirement, results: &Results) -> RequirementResult {
    let (found, details) = if r.check == VERDICT {
        (Some(results.validity), None)
    } else {
        match results.checks.iter().find(|c| c.name == r.check) {
            Some(c) => (Some(c.validity), Some(&c.details)),
            None => (None, None),
        }
    };
    let done = |outcome, measured, why: String| RequirementResult {
        requirement: r.clone(),
        found,
        measured,
        outcome,
        why,
    };
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
    let Some(details) = details else {
        return done(
            Outcome::Unknown,
            None,
            format!("the composed verdict has no details for '{}'", e.what),
        );
    };
    match measure(e, details) {
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
pub fn evaluate(e: &Expectation, results: &Results) -> ExpectationResult {
    let requirements: Vec<RequirementResult> = e
        .requirements
        .iter()
        .take(MAX_REQUIREMENTS)
        .map(|r| evaluate_one(r, results))
        .collect();
    let outcome = requirements
        .iter()
        .fold(Outcome::Held, |acc, r| acc.and(r.outcome));
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
    use serde_json::json;

    use super::*;
    use crate::verdict::CheckResult;

    fn results(fencing: Validity, details: Value) -> Results {
        Results::new(
            "s/1".into(),
            vec![CheckResult {
                name: "fencing".into(),
                validity: fencing,
                summary: String::new(),
                details,
            }],
        )
    }

    fn expect(validity: Validity, evidence: Option<Evidence>) -> Expectation {
        Expectation {
            scenario: "stale-leader".into(),
            protection: "fencing".into(),
            protection_on: validity == Validity::Valid,
            claim: "c".into(),
            requirements: vec![Requirement {
                check: "fencing".into(),
                validity,
                evidence,
            }],
        }
    }

    fn rejected(at_least: f64) -> Option<Evidence> {
        Some(Evidence {
            what: "stale order writes rejected".into(),
            pointer: "/rejected_by_domain/order".into(),
            filter: Vec::new(),
            sum: None,
            at_least,
        })
    }

    /// Proves an expectation holds only with the validity and the evidence it names: the
    /// right validity without evidence is "not held", the wrong one is "not held", an unknown
    /// check or a missing one is "unknown", and a count map lacking the key counts zero.
    #[test]
    fn holds_only_with_validity_and_evidence() {
        let with = json!({"rejected_by_domain": {"order": 3}});
        let without = json!({"rejected_by_domain": {}});
        let e = expect(Validity::Valid, rejected(1.0));
        assert_eq!(
            evaluate(&e, &results(Validity::Valid, with.clone())).outcome,
            Outcome::Held
        );
        let r = evaluate(&e, &results(Validity::Valid, without));
        assert_eq!(r.outcome, Outcome::NotHeld, "{r:?}");
        assert_eq!(r.requirements[0].measured, Some(0.0));
        assert_eq!(
            evaluate(&e, &results(Validity::Invalid, with.clone())).outcome,
            Outcome::NotHeld
        );
        assert_eq!(
            evaluate(&e, &results(Validity::Unknown, with.clone())).outcome,
            Outcome::Unknown
        );
        let unreadable = evaluate(&e, &results(Validity::Valid, json!({"x": 1})));
        assert_eq!(unreadable.outcome, Outcome::Unknown, "{unreadable:?}");
        let mut missing = expect(Validity::Invalid, None);
        missing.requirements[0].check = "nope".into();
        assert_eq!(
            evaluate(&missing, &results(Validity::Valid, with)).outcome,
            Outcome::Unknown
        );
        let off = expect(Validity::Invalid, None);
        let r = evaluate(&off, &results(Validity::Invalid, json!({})));
        assert_eq!(r.outcome, Outcome::Held);
        assert!(r.line().contains("fencing off): held"), "{}", r.line());
    }

    /// Proves array evidence counts matching items or sums a field over them.
    #[test]
    fn arrays_are_filtered_counted_and_summed() {
        let details = json!({"keys": [
            {"ledger": "payments", "key": "o1:refund", "calls": 3},
            {"ledger": "payments", "key": "o2:charge", "calls": 2},
            {"ledger": "shipments", "key": "o1:refund", "calls": 5},
        ]});
        let mut e = Evidence {
            what: "refund keys".into(),
            pointer: "/keys".into(),
            filter: vec![
                ("ledger".into(), "payments".into()),
                ("key".into(), ":refund".into()),
            ],
            sum: None,
            at_least: 1.0,
        };
        assert_eq!(measure(&e, &details), Ok(1.0));
        e.filter.truncate(1);
        e.sum = Some("calls".into());
        assert_eq!(measure(&e, &details), Ok(5.0));
        e.pointer = "/keys/0/ledger".into();
        assert!(measure(&e, &details).is_err());
    }

    /// Proves a spec without an expectation has none, and a malformed one is an error line.
    #[test]
    fn spec_field_is_optional_and_checked() {
        assert!(from_spec(&json!({"seed": 1})).is_none());
        let e = expect(Validity::Valid, rejected(1.0));
        let spec = json!({"expectation": e});
        assert_eq!(from_spec(&spec), Some(Ok(e)));
        let bad = from_spec(&json!({"expectation": {"scenario": 3}}));
        assert!(matches!(bad, Some(Err(m)) if m.contains("expectation")));
    }
}
