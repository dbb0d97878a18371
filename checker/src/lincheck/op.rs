//! The checker's input: operations paired from invoke/completion events, whatever file they came
//! from (the project's `history.jsonl` or a standalone JSONL file).

use std::collections::BTreeMap;
use std::fmt;

/// Which sequential specification the operations are checked against. Every model is per key:
/// operations on different keys never interact, so each key is checked on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModelKind {
    /// A register per key: read, write, compare-and-set. Starts as JSON `null`.
    Register,
    /// A string value per key: get, put, append. A missing key reads as `""`.
    Kv,
    /// A stock level per SKU: reserve q (succeeds iff stock >= q, subtracts), release q (adds),
    /// read. Starts at the SKU's initial stock.
    Stock,
}

impl ModelKind {
    /// Lowercase name as the command line spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelKind::Register => "register",
            ModelKind::Kv => "kv",
            ModelKind::Stock => "stock",
        }
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A value an operation writes or observes. Which variant appears depends on the model:
/// registers hold any JSON value, kv strings, stock integers.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    /// A register value.
    Json(serde_json::Value),
    /// A kv string.
    Text(String),
    /// A stock quantity or level.
    Int(i64),
}

impl fmt::Display for Val {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Val::Json(v) => write!(f, "{v}"),
            Val::Text(s) => write!(f, "{s:?}"),
            Val::Int(n) => write!(f, "{n}"),
        }
    }
}

/// What an operation asked for. Reads carry what they observed in [`Operation::observed`].
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    /// Register read, kv get, stock read.
    Read,
    /// Register write, kv put.
    Write(Val),
    /// Register compare-and-set: `[from, to]`.
    Cas(Val, Val),
    /// Kv append.
    Append(Val),
    /// Stock reserve of a quantity.
    Reserve(i64),
    /// Stock release of a quantity.
    Release(i64),
}

/// How an operation completed, Jepsen style.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// It happened.
    Ok,
    /// It did not happen (reads, writes, appends, releases) or it observed a condition that made
    /// it refuse (a failed cas saw a value other than `from`; a failed reserve saw too little
    /// stock).
    Fail,
    /// It may or may not have happened; its call stays open to the end of the history. An
    /// invocation without a completion counts as info.
    Info,
}

impl Outcome {
    /// Lowercase word.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Fail => "fail",
            Outcome::Info => "info",
        }
    }
}

/// One operation: an invocation paired with its completion.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    /// The key (register name, kv key, SKU). `""` when the input has none.
    pub key: String,
    /// Who performed it, as the input names the process.
    pub process: String,
    /// What it did.
    pub call: Call,
    /// How it completed.
    pub outcome: Outcome,
    /// For a read that completed ok: the value it returned.
    pub observed: Option<Val>,
    /// Position of the invocation in the input's event order.
    pub invoke_pos: u64,
    /// Position of the completion; `None` for info (open to the end).
    pub complete_pos: Option<u64>,
    /// Invocation time for drawing: nanoseconds in a run, else the line number.
    pub invoke_time: u64,
    /// Completion time for drawing; `None` for info.
    pub complete_time: Option<u64>,
    /// Where the invocation is in the input: a line number or a history index.
    pub source: u64,
}

impl Operation {
    /// The function name in the model's vocabulary, e.g. `cas` or `reserve`.
    pub fn f_name(&self, model: ModelKind) -> &'static str {
        match (&self.call, model) {
            (Call::Read, ModelKind::Kv) => "get",
            (Call::Read, ModelKind::Stock) => "read",
            (Call::Read, ModelKind::Register) => "read",
            (Call::Write(_), ModelKind::Kv) => "put",
            (Call::Write(_), _) => "write",
            (Call::Cas(..), _) => "cas",
            (Call::Append(_), _) => "append",
            (Call::Reserve(_), _) => "reserve",
            (Call::Release(_), _) => "release",
        }
    }

    /// A short human description: `write 3 ok`, `read -> 5`, `cas [1, 2] fail`.
    pub fn describe(&self, model: ModelKind) -> String {
        let f = self.f_name(model);
        let args = match &self.call {
            Call::Read => String::new(),
            Call::Write(v) | Call::Append(v) => format!(" {v}"),
            Call::Cas(a, b) => format!(" [{a}, {b}]"),
            Call::Reserve(q) | Call::Release(q) => format!(" {q}"),
        };
        match (&self.call, self.outcome, &self.observed) {
            (Call::Read, Outcome::Ok, Some(v)) => format!("{f}{args} -> {v}"),
            (_, outcome, _) => format!("{f}{args} {}", outcome.as_str()),
        }
    }
}

/// Whether [`Operation::source`] counts lines of a file or indexes of a run's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// 1-based line numbers of a standalone JSONL file.
    Line,
    /// `index` fields of a run's `history.jsonl`.
    HistoryIndex,
}

impl SourceKind {
    /// `line 7` or `index 7`.
    pub fn name(self, source: u64) -> String {
        match self {
            SourceKind::Line => format!("line {source}"),
            SourceKind::HistoryIndex => format!("index {source}"),
        }
    }
}

/// Everything the checker needs: the model, the operations and the initial state.
#[derive(Debug, Clone, PartialEq)]
pub struct LinHistory {
    /// The sequential specification.
    pub model: ModelKind,
    /// The operations, in order of invocation.
    pub ops: Vec<Operation>,
    /// What `Operation::source` counts.
    pub source_kind: SourceKind,
    /// Initial value of a register (default JSON `null`). Unused by the other models.
    pub register_initial: serde_json::Value,
    /// Initial stock per SKU; SKUs not listed start at `stock_default`.
    pub stock_initial: BTreeMap<String, i64>,
    /// Initial stock of SKUs `stock_initial` does not list; `None` makes such SKUs an error.
    pub stock_default: Option<i64>,
    /// Where each operation was sent, by [`Operation::source`] (a run's node); shown next to
    /// the operation. Empty when the input does not say.
    pub nodes: BTreeMap<u64, String>,
}

impl LinHistory {
    /// An empty history for `model` with default initial state.
    pub fn new(model: ModelKind, source_kind: SourceKind) -> LinHistory {
        LinHistory {
            model,
            ops: Vec::new(),
            source_kind,
            register_initial: serde_json::Value::Null,
            stock_initial: BTreeMap::new(),
            stock_default: None,
            nodes: BTreeMap::new(),
        }
    }

    /// Where `op` is in the input, and the node it was sent to if known: `index 7 on n2`.
    pub fn place(&self, op: &Operation) -> String {
        let at = self.source_kind.name(op.source);
        match self.nodes.get(&op.source) {
            Some(node) => format!("{at} on {node}"),
            None => at,
        }
    }

    /// The initial stock of `sku`, if known.
    pub fn initial_stock(&self, sku: &str) -> Option<i64> {
        self.stock_initial.get(sku).copied().or(self.stock_default)
    }
}
