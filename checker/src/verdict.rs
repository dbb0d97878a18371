//! Three-valued validity and the per-check result shape.

use serde::{Deserialize, Serialize};

/// Jepsen's validity: a composed verdict is the worst of its parts (invalid > unknown > valid).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Validity {
    /// Every property held.
    Valid,
    /// The checker could not tell (missing data, a bound was hit).
    Unknown,
    /// A property was violated.
    Invalid,
}

impl Validity {
    fn rank(self) -> u8 {
        match self {
            Validity::Valid => 0,
            Validity::Unknown => 1,
            Validity::Invalid => 2,
        }
    }

    /// The worse of two verdicts.
    pub fn and(self, other: Validity) -> Validity {
        if other.rank() > self.rank() {
            other
        } else {
            self
        }
    }

    /// The worst of many; valid when empty.
    pub fn all(items: impl IntoIterator<Item = Validity>) -> Validity {
        items.into_iter().fold(Validity::Valid, Validity::and)
    }

    /// The process exit code for this verdict: 0 valid, 1 invalid, 2 unknown.
    pub fn exit_code(self) -> i32 {
        match self {
            Validity::Valid => 0,
            Validity::Invalid => 1,
            Validity::Unknown => 2,
        }
    }

    /// Lowercase word.
    pub fn as_str(self) -> &'static str {
        match self {
            Validity::Valid => "valid",
            Validity::Unknown => "unknown",
            Validity::Invalid => "invalid",
        }
    }
}

impl std::fmt::Display for Validity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one check found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    /// Short name, e.g. `effects`.
    pub name: String,
    /// Its verdict.
    pub validity: Validity,
    /// One sentence a person reads first.
    pub summary: String,
    /// The evidence: structured so both the report and a script can read it.
    pub details: serde_json::Value,
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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves the composition order invalid > unknown > valid, whatever the order of parts.
    #[test]
    fn worst_wins() {
        use Validity::*;
        assert_eq!(Validity::all([]), Valid);
        assert_eq!(Validity::all([Valid, Unknown]), Unknown);
        assert_eq!(Validity::all([Unknown, Invalid, Valid]), Invalid);
        assert_eq!(Validity::all([Invalid, Unknown]), Invalid);
        assert_eq!(Invalid.exit_code(), 1);
        assert_eq!(Unknown.exit_code(), 2);
        assert_eq!(
            serde_json::to_string(&Unknown).expect("serializes"),
            "\"unknown\""
        );
    }
}
