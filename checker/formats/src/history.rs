//! The history schema: what the harness writes to `history.jsonl` and the checker reads.
//!
//! Semantics follow Jepsen: every operation is recorded twice, once as `invoke` when a process
//! starts it and once as its completion. `ok` means it happened, `fail` means it certainly did
//! not, `info` means it may or may not have happened (a timeout, a lost response). A process
//! whose operation ended in `info` never invokes again (its call stays open forever).
//!
//! The first line of the file is a [`Header`] carrying [`SCHEMA_VERSION`]; every further line is
//! one [`Op`]. An op's `value` has the shape of one of the [`values`] structs, chosen by its
//! [`F`] and type: writers build it with [`Op::payload`]-compatible structs, readers decode it
//! with [`Op::payload`], so both sides name each field through one type.

use serde::de::DeserializeOwned;
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

/// The function of an operation (`f`). A history naming any other is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum F {
    /// A client places an order: invoke [`values::PlaceOrder`], completion [`values::Placed`].
    PlaceOrder,
    /// A client reads an order: invoke [`values::ReadOrder`], ok [`values::OrderRead`].
    ReadOrder,
    /// A stock client reserves units: [`values::StockChange`] both ways.
    Reserve,
    /// A stock client releases units it reserved: [`values::StockChange`] both ways.
    Release,
    /// A stock client reads a SKU's level: invoke [`values::ReadStock`], ok
    /// [`values::StockRead`].
    ReadStock,
    /// Nemesis: a fault starts ([`values::FaultOp`]).
    #[serde(rename = "start")]
    FaultStart,
    /// Nemesis: a fault is healed ([`values::FaultOp`]).
    #[serde(rename = "heal")]
    FaultHeal,
}

impl F {
    /// The name as written in the history.
    pub fn as_str(self) -> &'static str {
        match self {
            F::PlaceOrder => "place-order",
            F::ReadOrder => "read-order",
            F::Reserve => "reserve",
            F::Release => "release",
            F::ReadStock => "read-stock",
            F::FaultStart => "start",
            F::FaultHeal => "heal",
        }
    }

    /// True for the stock workload's functions.
    pub fn is_stock(self) -> bool {
        matches!(self, F::Reserve | F::Release | F::ReadStock)
    }
}

impl std::fmt::Display for F {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
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
    /// The function.
    pub f: F,
    /// The argument on invoke, the result on completion: one of the [`values`] shapes.
    #[serde(default)]
    pub value: serde_json::Value,
    /// The node the operation was sent to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Why it failed or is indeterminate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Op {
    /// The value decoded as `T`, or `None` when it does not have that shape.
    pub fn payload<T: DeserializeOwned>(&self) -> Option<T> {
        T::deserialize(&self.value).ok()
    }
}

/// The shapes of op values, one struct per (function, phase). The harness builds values from
/// them, the checker decodes values into them.
pub mod values {
    use serde::{Deserialize, Serialize};

    use crate::fault::Kind;
    use crate::final_state::{Item, OrderStatus};

    /// `place-order` invoke: what the client sends (`POST /orders` body plus its key).
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct PlaceOrder {
        /// The client's idempotency key.
        pub key: String,
        /// Who orders.
        pub customer: String,
        /// What.
        pub items: Vec<Item>,
        /// Cents.
        pub amount: i64,
    }

    /// `place-order` completion: the key, and on ok the order id the service assigned.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Placed {
        /// The client's idempotency key.
        pub key: String,
        /// The order id (ok only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub order_id: Option<String>,
    }

    /// `read-order` invoke and its fail/info completion.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct ReadOrder {
        /// The order.
        pub order_id: String,
    }

    /// `read-order` ok: the status the client saw.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct OrderRead {
        /// The order.
        pub order_id: String,
        /// Its status at that moment.
        pub status: OrderStatus,
    }

    /// Why a stock operation definitely did not happen although it did not fail for stock.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "lowercase")]
    pub enum Refusal {
        /// A definite 503 (`not_leader`, `store_unavailable`): nothing happened and nothing
        /// was observed, so the linearizability check leaves the operation out.
        Unavailable,
    }

    /// `reserve` / `release`, invoke and completion.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct StockChange {
        /// The idempotency key of the call.
        pub key: String,
        /// SKU.
        pub sku: String,
        /// Units.
        pub qty: i64,
        /// The key of the reservation a release undoes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub reservation: Option<String>,
        /// On a fail that was a refusal for unavailability.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub refused: Option<Refusal>,
    }

    /// `read-stock` invoke and its fail completion.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct ReadStock {
        /// SKU.
        pub sku: String,
    }

    /// `read-stock` ok.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct StockRead {
        /// SKU.
        pub sku: String,
        /// Units available when read.
        pub available: i64,
    }

    /// A nemesis `start` or `heal`: the fault's id, kind and target, and (on start) what was
    /// resolved (`detail`: the heal ledger's fault, or the plan when it could not be resolved).
    /// `D` is the detail's type: the nemesis writes its own, readers that only display it take
    /// the default.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct FaultOp<D = serde_json::Value> {
        /// Unique within the run: `f1`, `f2`, ...
        pub id: String,
        /// Which kind of fault.
        pub fault: Kind,
        /// A short description of the target (`n1/payment`, `n1-x-n2`, `n1->n2/payment`);
        /// none when it could not be resolved.
        #[serde(default)]
        pub target: Option<String>,
        /// What was resolved.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub detail: Option<D>,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves an op reads with its function typed and an unknown function is refused, and that
    /// values decode into their shapes (and not into the wrong one).
    #[test]
    fn ops_and_values_are_typed() {
        let line = r#"{"index":0,"time_ns":5,"process":0,"type":"ok","f":"place-order","value":{"key":"k","order_id":"o1"},"node":"n1"}"#;
        let op: Op = serde_json::from_str(line).expect("reads");
        assert_eq!(op.f, F::PlaceOrder);
        let placed: values::Placed = op.payload().expect("placed");
        assert_eq!(placed.order_id.as_deref(), Some("o1"));
        assert!(op.payload::<values::StockRead>().is_none());
        assert_eq!(serde_json::to_string(&op).expect("writes"), line);
        let bad = line.replace("place-order", "frobnicate");
        let e = serde_json::from_str::<Op>(&bad).expect_err("unknown f");
        assert!(e.to_string().contains("frobnicate"), "{e}");
        let nemesis = r#"{"index":1,"time_ns":6,"process":"nemesis","type":"invoke","f":"start","value":{"id":"f1","fault":"pause","target":"n1/order","detail":{"fault":"pause"}}}"#;
        let op: Op = serde_json::from_str(nemesis).expect("reads");
        let fault: values::FaultOp = op.payload().expect("fault op");
        assert_eq!(fault.fault, crate::fault::Kind::Pause);
        assert_eq!(fault.target.as_deref(), Some("n1/order"));
    }
}
