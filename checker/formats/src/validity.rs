//! Three-valued validity (Jepsen's true / unknown / false).

use serde::{Deserialize, Serialize};

/// A composed verdict is the worst of its parts (invalid > unknown > valid).
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
        f.pad(self.as_str())
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
