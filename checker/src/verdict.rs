//! The per-check result shape of `results.json`, and the composed verdict.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use formats::expectation::CheckId;
pub use formats::Validity;

use crate::check::{Check, Verdict};

/// What one check found, as `results.json` lists it. `details` holds the check's typed
/// details ([`Check::Details`]) serialized; read them back with [`CheckResult::details_of`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    /// Which check.
    #[serde(with = "check_id")]
    pub name: CheckId,
    /// Its verdict.
    pub validity: Validity,
    /// One sentence a person reads first.
    pub summary: String,
    /// The evidence, structured so both the report and a script can read it.
    pub details: serde_json::Value,
}

mod check_id {
    use formats::expectation::CheckId;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(id: &CheckId, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(id.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<CheckId, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl CheckResult {
    /// The result of check `C`.
    pub fn of<C: Check>(v: Verdict<C::Details>) -> CheckResult {
        CheckResult {
            name: C::ID,
            validity: v.validity,
            summary: v.summary,
            // Serializing plain data structs cannot fail; a failure is a defect in a Details type.
            details: serde_json::to_value(&v.details)
                .unwrap_or_else(|e| panic!("{} details do not serialize: {e}", C::ID)),
        }
    }

    /// Check `C`'s typed details, if this is `C`'s result and its details have `C`'s shape.
    pub fn details_of<C: Check>(&self) -> Option<C::Details> {
        (self.name == C::ID)
            .then(|| decode(&self.details))
            .flatten()
    }
}

fn decode<T: DeserializeOwned>(v: &serde_json::Value) -> Option<T> {
    T::deserialize(v).ok()
}

/// `results.json`: the composed verdict and every check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Results {
    /// Worst of the checks.
    pub validity: Validity,
    /// The run this is about.
    pub run_id: String,
    /// Wall-clock start of the run in Unix milliseconds (from the history header).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_unix_ms: Option<u64>,
    /// Seconds from the start to the last recorded operation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<f64>,
    /// Every check, in the order they ran.
    pub checks: Vec<CheckResult>,
    /// The scenario's expectation and whether it held, when `spec.json` names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expectation: Option<crate::expectation::ExpectationResult>,
    /// Parts of the run directory this version reads differently from the version that wrote
    /// it (e.g. a version-1 expectation that is no longer evaluated).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Results {
    /// Composes check results.
    pub fn new(run_id: String, checks: Vec<CheckResult>) -> Results {
        let validity = Validity::all(checks.iter().map(|c| c.validity));
        Results {
            validity,
            run_id,
            started_unix_ms: None,
            duration_s: None,
            checks,
            expectation: None,
            notes: Vec::new(),
        }
    }

    /// The result of check `id`.
    pub fn get(&self, id: CheckId) -> Option<&CheckResult> {
        self.checks.iter().find(|c| c.name == id)
    }

    /// Check `C`'s validity and typed details.
    pub fn check<C: Check>(&self) -> Option<(Validity, C::Details)> {
        let r = self.get(C::ID)?;
        Some((r.validity, r.details_of::<C>()?))
    }
}
