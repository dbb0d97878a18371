//! The inventory check of a run: the stock operations of `history.jsonl` (contract §6: `reserve`
//! and `release` with `{key, sku, qty}`, `read-stock` with `{sku}` answered by
//! `{sku, available}`) must be linearizable against the stock model, per SKU, starting from the
//! initial stock that `final-state.json` reports.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::check::{check, Options, Outcome as CheckOutcome};
use super::op::{Call, LinHistory, ModelKind, Operation, Outcome, SourceKind, Val};
use crate::final_state::FinalState;
use crate::history::{OpType, Process};
use crate::rundir::{History, RunData};
use crate::verdict::{CheckResult, Validity};

/// `f` names of the stock operations.
pub mod f {
    /// Reserve stock of a SKU.
    pub const RESERVE: &str = "reserve";
    /// Give reserved stock back.
    pub const RELEASE: &str = "release";
    /// Read a SKU's available stock.
    pub const READ_STOCK: &str = "read-stock";
}

/// The name of the check in `results.json`.
pub const CHECK_NAME: &str = "linearizability";

/// The file the HTML view is written to inside a run directory.
pub const HTML_FILE: &str = "linearizability.html";

/// The field of a failed reserve's value that says why it was refused, and its value for a
/// refusal that says nothing about stock (contract §6): such a reserve did not happen and
/// observed nothing, so the check leaves it out. A failed reserve without the field is a
/// refusal for lack of stock, which the stock model reads as an observation.
pub const REFUSED: &str = "refused";
/// See [`REFUSED`].
pub const UNAVAILABLE: &str = "unavailable";

/// How many prefix operations the check's details list (the most recent ones).
pub const MAX_PREFIX_LISTED: usize = 50;

/// Settings of the inventory check. The default: default search bounds, no default stock.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InventoryOptions {
    /// Search bounds.
    pub search: Options,
    /// Initial stock of SKUs that `final-state.json` does not list; `None` makes their check
    /// unknown.
    pub default_initial_stock: Option<i64>,
}

/// The stock operations of a run and what the check found.
#[derive(Debug, Clone)]
pub struct InventoryAnalysis {
    /// The operations as checked (empty if they could not be read).
    pub history: LinHistory,
    /// The result; `None` if the operations could not be read (see `problem`).
    pub outcome: Option<CheckOutcome>,
    /// Why the operations could not be read, if they could not.
    pub problem: Option<String>,
}

fn qty(v: &Value) -> Option<i64> {
    v.get("qty").and_then(Value::as_i64).filter(|q| *q >= 0)
}

fn sku(v: &Value) -> Option<String> {
    v.get("sku").and_then(Value::as_str).map(str::to_owned)
}

/// Pairs the stock operations of `history` into the checker's input.
pub fn stock_operations(history: &History, final_state: &FinalState) -> Result<LinHistory, String> {
    let mut lin = LinHistory::new(ModelKind::Stock, SourceKind::HistoryIndex);
    for s in &final_state.stock {
        lin.stock_initial.insert(s.sku.clone(), s.initial);
    }
    let mut open: HashMap<u64, usize> = HashMap::new();
    let mut dropped: Vec<usize> = Vec::new();
    for op in &history.ops {
        let Process::Client(p) = op.process else {
            continue;
        };
        if ![f::RESERVE, f::RELEASE, f::READ_STOCK].contains(&op.f.as_str()) {
            continue;
        }
        let at = |m: &str| format!("index {}: {} {m}", op.index, op.f);
        if op.op_type == OpType::Invoke {
            if open.contains_key(&p) {
                return Err(at("invoked while the process has an operation open"));
            }
            let key = sku(&op.value).ok_or_else(|| at("invocation has no sku"))?;
            let call = match op.f.as_str() {
                f::READ_STOCK => Call::Read,
                name => {
                    let q = qty(&op.value).ok_or_else(|| at("invocation has no valid qty"))?;
                    if name == f::RESERVE {
                        Call::Reserve(q)
                    } else {
                        Call::Release(q)
                    }
                }
            };
            open.insert(p, lin.ops.len());
            if let Some(node) = &op.node {
                lin.nodes.insert(op.index, node.clone());
            }
            lin.ops.push(Operation {
                key,
                process: p.to_string(),
                call,
                outcome: Outcome::Info,
                observed: None,
                invoke_pos: op.index,
                complete_pos: None,
                invoke_time: op.time_ns,
                complete_time: None,
                source: op.index,
            });
            continue;
        }
        let i = open
            .remove(&p)
            .ok_or_else(|| at("completes with nothing open"))?;
        let done = &mut lin.ops[i];
        if done.f_name(ModelKind::Stock) != op.f.as_str()
            && !(done.call == Call::Read && op.f == f::READ_STOCK)
        {
            return Err(at("completes an invocation of another f"));
        }
        done.outcome = match op.op_type {
            OpType::Ok => Outcome::Ok,
            OpType::Fail => Outcome::Fail,
            _ => Outcome::Info,
        };
        if done.outcome == Outcome::Fail
            && op.value.get(REFUSED).and_then(Value::as_str) == Some(UNAVAILABLE)
        {
            dropped.push(i);
            continue;
        }
        if done.outcome != Outcome::Info {
            done.complete_pos = Some(op.index);
            done.complete_time = Some(op.time_ns);
        }
        if done.outcome == Outcome::Ok && done.call == Call::Read {
            let level = op.value.get("available").and_then(Value::as_i64);
            done.observed = Some(Val::Int(level.ok_or_else(|| at("ok has no available"))?));
        }
    }
    // Removed last, so that the positions held in `open` stayed valid while pairing.
    dropped.sort_unstable();
    for i in dropped.into_iter().rev() {
        lin.ops.remove(i);
    }
    Ok(lin)
}

/// Reads and checks the stock operations of a run.
pub fn analyze_inventory(
    history: &History,
    final_state: &FinalState,
    options: &InventoryOptions,
) -> InventoryAnalysis {
    match stock_operations(history, final_state) {
        Ok(mut lin) => {
            lin.stock_default = options.default_initial_stock;
            let outcome = check(&lin, &options.search);
            InventoryAnalysis {
                history: lin,
                outcome: Some(outcome),
                problem: None,
            }
        }
        Err(problem) => InventoryAnalysis {
            history: LinHistory::new(ModelKind::Stock, SourceKind::HistoryIndex),
            outcome: None,
            problem: Some(problem),
        },
    }
}

/// The inventory linearizability check of a run, with default bounds (30 s, 2 GiB) and the
/// initial stock from `final-state.json`.
pub fn inventory(history: &History, final_state: &FinalState) -> CheckResult {
    analyze_inventory(history, final_state, &InventoryOptions::default()).check_result()
}

/// Checks a run's stock operations and writes [`HTML_FILE`] into its directory.
pub fn write_inventory_html(run: &RunData) -> std::io::Result<PathBuf> {
    let analysis = analyze_inventory(&run.history, &run.final_state, &InventoryOptions::default());
    write_html(&run.dir, &analysis.html())
}

/// Writes an HTML view (from [`super::html::render`]) as [`HTML_FILE`] in `dir`.
pub fn write_html(dir: &Path, html: &str) -> std::io::Result<PathBuf> {
    let path = dir.join(HTML_FILE);
    std::fs::write(&path, html)?;
    Ok(path)
}

impl InventoryAnalysis {
    /// The HTML view of this analysis.
    pub fn html(&self) -> String {
        match &self.outcome {
            Some(outcome) => {
                super::html::render(&self.history, outcome, "Inventory linearizability")
            }
            None => super::html::render_problem(
                "Inventory linearizability",
                self.problem.as_deref().unwrap_or("unknown"),
            ),
        }
    }

    /// The result in the shape of every check.
    pub fn check_result(&self) -> CheckResult {
        let Some(outcome) = &self.outcome else {
            let problem = self.problem.clone().unwrap_or_default();
            return CheckResult {
                name: CHECK_NAME.into(),
                validity: Validity::Unknown,
                summary: format!("stock operations could not be read: {problem}"),
                details: json!({ "problem": problem }),
            };
        };
        let lin = &self.history;
        if lin.ops.is_empty() {
            return CheckResult {
                name: CHECK_NAME.into(),
                validity: Validity::Valid,
                summary: "no stock operations in the history: nothing to check".into(),
                details: json!({ "skipped": true, "operations": 0 }),
            };
        }
        let seconds = |ns: u64| (ns / 1_000_000) as f64 / 1e3;
        let describe = |i: usize| {
            let op = &lin.ops[i];
            json!({
                "index": op.source,
                "process": op.process,
                "node": lin.nodes.get(&op.source),
                "sku": op.key,
                "op": op.describe(lin.model),
                "invoked_s": seconds(op.invoke_time),
                "completed_s": op.complete_time.map(seconds),
            })
        };
        let summary = match (outcome.validity, &outcome.failure) {
            (Validity::Invalid, Some(fail)) => {
                let op = &lin.ops[fail.op];
                let node = lin
                    .nodes
                    .get(&op.source)
                    .map(|n| format!(" on {n}"))
                    .unwrap_or_default();
                format!(
                    "SKU {:?}: {} by process {}{node} at index {} cannot be linearized after {} \
                     operations leaving stock {}",
                    fail.key,
                    op.describe(lin.model),
                    op.process,
                    op.source,
                    fail.prefix.len(),
                    fail.state
                )
            }
            (Validity::Unknown, _) => format!(
                "could not decide: {}",
                outcome.unknown_reason.as_deref().unwrap_or("unknown")
            ),
            _ => format!(
                "{} stock operations on {} SKUs are linearizable ({:.1} ms)",
                lin.ops.len(),
                outcome.keys.len(),
                outcome.elapsed.as_secs_f64() * 1e3
            ),
        };
        let failure = outcome.failure.as_ref().map(|fail| {
            let skip = fail.prefix.len().saturating_sub(MAX_PREFIX_LISTED);
            json!({
                "sku": fail.key,
                "operation": describe(fail.op),
                "stock_after_prefix": fail.state,
                "prefix_length": fail.prefix.len(),
                "prefix_not_listed": skip,
                "prefix_tail": fail.prefix[skip..]
                    .iter()
                    .enumerate()
                    .map(|(n, &i)| {
                        let mut d = describe(i);
                        d["position"] = json!(skip + n + 1);
                        d
                    })
                    .collect::<Vec<_>>(),
            })
        });
        let skus: Vec<Value> = outcome
            .keys
            .iter()
            .map(|k| {
                json!({
                    "sku": k.key,
                    "operations": k.ops_checked,
                    "initial": lin.initial_stock(&k.key),
                    "validity": k.validity,
                    "unknown_reason": k.unknown_reason,
                    "configurations": k.configurations,
                })
            })
            .collect();
        CheckResult {
            name: CHECK_NAME.into(),
            validity: outcome.validity,
            summary,
            details: json!({
                "model": "stock",
                "operations": lin.ops.len(),
                "elapsed_ms": outcome.elapsed.as_secs_f64() * 1e3,
                "unknown_reason": outcome.unknown_reason,
                "failure": failure,
                "skus": skus,
            }),
        }
    }
}
