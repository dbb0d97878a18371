//! The history schema: what the harness writes to `history.jsonl` and the checker reads.
//!
//! Semantics follow Jepsen: every operation is recorded twice, once as `invoke` when a process
//! starts it and once as its completion. `ok` means it happened, `fail` means it certainly did
//! not, `info` means it may or may not have happened (a timeout, a lost response). A process
//! whose operation ended in `info` never invokes again (its call stays open forever).
//!
//! The first line of the file is a [`Header`] carrying [`SCHEMA_VERSION`]; every further line is
//! one [`Op`].

use serde::{Deserialize, Serialize};

/// Version of the history format. Bump it when a field changes meaning or disappears.
pub const SCHEMA_VERSION: u32 = 1;

/// The first line of `history.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// Always [`SCHEMA_VERSION`] for files this version writes.
    pub schema_version: u32,
    /// Identifies the run, e.g. `smoke/20261125T203000Z`.
    pub run_id: String,
    /// Wall-clock start of the run in Unix milliseconds; `time_ns` of ops counts from here.
    pub started_unix_ms: u64,
}

/// Who performed an operation: a client process (numbered, Jepsen style) or the nemesis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Process {
    /// A client's logical process number.
    Client(u64),
    /// The fault injector.
    Nemesis(NemesisTag),
}

/// Serializes as the string `"nemesis"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum NemesisTag {
    /// The only value.
    #[serde(rename = "nemesis")]
    Nemesis,
}

impl Process {
    /// The nemesis process.
    pub const NEMESIS: Process = Process::Nemesis(NemesisTag::Nemesis);

    /// True for the nemesis.
    pub fn is_nemesis(&self) -> bool {
        matches!(self, Process::Nemesis(_))
    }
}

impl std::fmt::Display for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Process::Client(n) => write!(f, "{n}"),
            Process::Nemesis(_) => write!(f, "nemesis"),
        }
    }
}

/// Whether a line is an invocation or which kind of completion it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpType {
    /// The operation started.
    Invoke,
    /// It happened.
    Ok,
    /// It certainly did not happen.
    Fail,
    /// It may or may not have happened.
    Info,
}

impl OpType {
    /// True for ok, fail and info.
    pub fn is_completion(self) -> bool {
        !matches!(self, OpType::Invoke)
    }
}

/// One line of the history after the header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Op {
    /// Position in the history, 0-based, strictly increasing.
    pub index: u64,
    /// Monotonic nanoseconds since the run started.
    pub time_ns: u64,
    /// Who did it.
    pub process: Process,
    /// invoke, ok, fail or info.
    #[serde(rename = "type")]
    pub op_type: OpType,
    /// The function: see [`f`] for the names this project uses.
    pub f: String,
    /// The argument on invoke, the result on completion.
    #[serde(default)]
    pub value: serde_json::Value,
    /// The node the operation was sent to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Why it failed or is indeterminate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Names of operation functions (`f`) used by the workload and the nemesis.
pub mod f {
    /// A client places an order: invoke value `{key, customer, items, amount}`, ok value
    /// `{order_id}`.
    pub const PLACE_ORDER: &str = "place-order";
    /// A client reads an order: ok value `{order_id, status}`.
    pub const READ_ORDER: &str = "read-order";
    /// Nemesis: a fault starts. Value `{fault, target...}`.
    pub const FAULT_START: &str = "start";
    /// Nemesis: a fault is healed. Value as for start.
    pub const FAULT_HEAL: &str = "heal";
}
