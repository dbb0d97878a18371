//! One line of `heal-ledger.jsonl`: a fault is written *before* it starts and marked healed
//! after its heal. `F` is the nemesis's resolved fault (what its heal needs); the entry's
//! shape is fixed here.

use serde::{Deserialize, Serialize};

/// File name inside a run directory.
pub const FILE: &str = "heal-ledger.jsonl";

/// One ledger line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum LedgerEntry<F> {
    /// The fault `id` is about to start.
    Start {
        /// The fault's id in the run (`f1`, ...).
        id: String,
        /// What was resolved, with everything its heal needs.
        fault: F,
    },
    /// The fault `id` is healed.
    Healed {
        /// The fault's id.
        id: String,
    },
}
