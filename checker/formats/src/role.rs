//! The pipeline's roles, as every crate of the tool names them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One pipeline role: one `pipeline <role>` process per node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A replica of the versioned key-value store.
    Store,
    /// The order intake and the saga orchestrator (elected leader).
    Order,
    /// Charges and refunds (elected leader).
    Payment,
    /// Stock reservations (a leader in linearizable mode).
    Inventory,
    /// Shipments.
    Shipping,
}

impl Role {
    /// Every role, in start order (the store first: every other role keeps its state there).
    pub const ALL: [Role; 5] = [
        Role::Store,
        Role::Inventory,
        Role::Payment,
        Role::Shipping,
        Role::Order,
    ];

    /// The roles other roles call over HTTP (every role but the store and the orchestrator).
    pub const SERVICES: [Role; 3] = [Role::Inventory, Role::Payment, Role::Shipping];

    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Store => "store",
            Role::Order => "order",
            Role::Payment => "payment",
            Role::Inventory => "inventory",
            Role::Shipping => "shipping",
        }
    }

    /// The names of every role, comma separated, for error messages.
    pub fn names() -> String {
        Role::ALL
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("'{s}' is not a role (roles: {})", Role::names()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves names round-trip through text and serde, and an unknown name is refused with the
    /// culprit and the known names.
    #[test]
    fn names_round_trip() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
            let json = serde_json::to_string(&r).expect("serializes");
            assert_eq!(json, format!("\"{r}\""));
        }
        let e = "ordr".parse::<Role>().expect_err("unknown");
        assert!(e.contains("'ordr'") && e.contains("payment"), "{e}");
    }
}
