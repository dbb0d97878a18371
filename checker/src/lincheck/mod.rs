//! A model-based linearizability checker.
//!
//! Given operations (invocations paired with ok / fail / info completions) and a sequential
//! model, it decides whether some total order of the operations, consistent with real time (an
//! operation that completed before another was invoked comes first), explains every result.
//!
//! How:
//! - **P-compositionality**: every model here is per key, so the history is split by key and
//!   each part is checked on its own, in parallel ([`check`]); one part not linearizable stops
//!   the others.
//! - **Wing & Gong's search with Lowe's memo** per part (`search`): backtracking over a
//!   doubly-linked list of call/return entries with lift/unlift, skipping any configuration
//!   (set of linearized operations, model state) seen before. The set's hash is kept
//!   incrementally and every hash hit is confirmed by comparing state and set (`cache`).
//! - **Bounds**: a time limit and a memory bound answer unknown instead of running away.
//!
//! Semantics: ok happened; info may or may not have happened and stays open to the end; a failed
//! read, write, append or release did not happen; a failed cas observed a value other than its
//! `from`; a failed reserve observed stock below its quantity.
//!
//! ```
//! use checker::lincheck::{check, jsonl, ModelKind, Options};
//! let text = r#"{"process": 0, "type": "invoke", "f": "write", "value": 1}
//! {"process": 1, "type": "invoke", "f": "read"}
//! {"process": 0, "type": "ok", "f": "write", "value": 1}
//! {"process": 1, "type": "ok", "f": "read", "value": 1}
//! "#;
//! let history = jsonl::parse(text.as_bytes(), "example".as_ref(), ModelKind::Register)?;
//! let outcome = check(&history, &Options::default());
//! assert_eq!(outcome.validity, checker::Validity::Valid);
//! # Ok::<(), jsonl::InputError>(())
//! ```

mod cache;
mod check;
pub mod gen;
pub mod html;
pub mod inventory;
pub mod jsonl;
mod model;
mod op;
mod search;
pub mod text;

pub use check::{
    check, Failure, KeyReport, Options, Outcome as CheckOutcome, DEFAULT_MEMORY_LIMIT_BYTES,
    DEFAULT_TIME_LIMIT,
};
pub use inventory::{
    analyze_inventory, inventory, write_html, write_inventory_html, InventoryAnalysis,
    InventoryOptions, HTML_FILE,
};
pub use op::{Call, LinHistory, ModelKind, Operation, Outcome, SourceKind, Val};
