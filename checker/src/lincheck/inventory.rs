//! The inventory check of a run: the stock operations of `history.jsonl` (contract §6: `reserve`
//! and `release` with `{key, sku, qty}`, `read-stock` with `{sku}` answered by
//! `{sku, available}`) must be linearizable against the stock model, per SKU, starting from the
//! initial stock that `final-state.json` reports.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use formats::final_state::FinalState;
use formats::history::values::{Refusal, StockChange, StockRead};
use formats::history::{OpType, Process, F};
use serde::{Deserialize, Serialize};

use super::check::{check, Options, Outcome as CheckOutcome};
use super::op::{Call, LinHistory, ModelKind, Operation, Outcome, SourceKind, Val};
use crate::check::{Check, Page, Verdict};
use crate::checks::Params;
use crate::report::table::{num, opt, opt_num, Table};
use crate::rundir::{History, RunData};
use crate::verdict::{CheckId, Validity};

/// The file the HTML view is written to inside a run directory.
pub const HTML_FILE: &str = formats::files::LINEARIZABILITY_HTML;

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

fn sku(op: &formats::history::Op) -> Option<String> {
    op.value
        .get("sku")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
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
        if !op.f.is_stock() {
            continue;
        }
        let at = |m: &str| format!("index {}: {} {m}", op.index, op.f);
        if op.op_type == OpType::Invoke {
            if open.contains_key(&p) {
                return Err(at("invoked while the process has an operation open"));
            }
            let key = sku(op).ok_or_else(|| at("invocation has no sku"))?;
            let call = match op.f {
                F::ReadStock => Call::Read,
                f => {
                    let q = op
                        .payload::<StockChange>()
                        .map(|c| c.qty)
                        .filter(|q| *q >= 0)
                        .ok_or_else(|| at("invocation has no valid qty"))?;
                    if f == F::Reserve {
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
            && !(done.call == Call::Read && op.f == F::ReadStock)
        {
            return Err(at("completes an invocation of another f"));
        }
        done.outcome = match op.op_type {
            OpType::Ok => Outcome::Ok,
            OpType::Fail => Outcome::Fail,
            _ => Outcome::Info,
        };
        if done.outcome == Outcome::Fail
            && op.payload::<StockChange>().and_then(|c| c.refused) == Some(Refusal::Unavailable)
        {
            dropped.push(i);
            continue;
        }
        if done.outcome != Outcome::Info {
            done.complete_pos = Some(op.index);
            done.complete_time = Some(op.time_ns);
        }
        if done.outcome == Outcome::Ok && done.call == Call::Read {
            let level = op.payload::<StockRead>().map(|r| r.available);
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
pub fn inventory(history: &History, final_state: &FinalState) -> Verdict<Details> {
    analyze_inventory(history, final_state, &InventoryOptions::default()).verdict()
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

    /// The result as a check's verdict (with the HTML view as its page when it checked
    /// anything).
    pub fn verdict(&self) -> Verdict<Details> {
        let mut v = self.verdict_only();
        if !self.history.ops.is_empty() {
            v.pages.push(Page {
                file: HTML_FILE,
                html: self.html(),
            });
        }
        v
    }

    fn verdict_only(&self) -> Verdict<Details> {
        let Some(outcome) = &self.outcome else {
            let problem = self.problem.clone().unwrap_or_default();
            return Verdict::new(
                Validity::Unknown,
                format!("stock operations could not be read: {problem}"),
                Details {
                    problem: Some(problem),
                    ..Details::default()
                },
            );
        };
        let lin = &self.history;
        if lin.ops.is_empty() {
            return Verdict::new(
                Validity::Valid,
                "no stock operations in the history: nothing to check",
                Details {
                    skipped: true,
                    ..Details::default()
                },
            );
        }
        let summary = summary(lin, outcome);
        let failure = outcome.failure.as_ref().map(|fail| {
            let skip = fail.prefix.len().saturating_sub(MAX_PREFIX_LISTED);
            Failure {
                sku: fail.key.clone(),
                operation: describe(lin, fail.op, None),
                stock_after_prefix: fail.state.to_string(),
                prefix_length: fail.prefix.len(),
                prefix_not_listed: skip,
                prefix_tail: fail.prefix[skip..]
                    .iter()
                    .enumerate()
                    .map(|(n, &i)| describe(lin, i, Some(skip + n + 1)))
                    .collect(),
            }
        });
        let skus = outcome
            .keys
            .iter()
            .map(|k| SkuVerdict {
                sku: k.key.clone(),
                operations: k.ops_checked,
                initial: lin.initial_stock(&k.key),
                validity: k.validity,
                unknown_reason: k.unknown_reason.clone(),
                configurations: k.configurations,
            })
            .collect();
        Verdict::new(
            outcome.validity,
            summary,
            Details {
                model: Some("stock".into()),
                operations: lin.ops.len(),
                elapsed_ms: Some(outcome.elapsed.as_secs_f64() * 1e3),
                unknown_reason: outcome.unknown_reason.clone(),
                failure,
                skus,
                ..Details::default()
            },
        )
    }
}

fn seconds(ns: u64) -> f64 {
    (ns / 1_000_000) as f64 / 1e3
}

fn describe(lin: &LinHistory, i: usize, position: Option<usize>) -> OpView {
    let op = &lin.ops[i];
    OpView {
        position,
        index: op.source,
        process: op.process.clone(),
        node: lin.nodes.get(&op.source).cloned(),
        sku: op.key.clone(),
        op: op.describe(lin.model),
        invoked_s: seconds(op.invoke_time),
        completed_s: op.complete_time.map(seconds),
    }
}

fn summary(lin: &LinHistory, outcome: &CheckOutcome) -> String {
    match (outcome.validity, &outcome.failure) {
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
    }
}

/// One stock operation as the evidence shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpView {
    /// Its position in the linearization (prefix operations only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<usize>,
    /// History index of its invocation.
    pub index: u64,
    /// Process.
    pub process: String,
    /// The node it was sent to.
    pub node: Option<String>,
    /// SKU.
    pub sku: String,
    /// `reserve 2 ok`, `read -> 3`, ...
    pub op: String,
    /// Invocation time, seconds since start.
    pub invoked_s: f64,
    /// Completion time.
    pub completed_s: Option<f64>,
}

/// The operation that could not be linearized, with the end of the longest linearizable
/// prefix before it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// SKU.
    pub sku: String,
    /// The operation.
    pub operation: OpView,
    /// The stock the prefix leaves.
    pub stock_after_prefix: String,
    /// Operations in the prefix.
    pub prefix_length: usize,
    /// Prefix operations not listed.
    pub prefix_not_listed: usize,
    /// The last [`MAX_PREFIX_LISTED`] prefix operations, in linearization order.
    pub prefix_tail: Vec<OpView>,
}

/// One SKU's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkuVerdict {
    /// SKU.
    pub sku: String,
    /// Its initial stock.
    pub initial: Option<i64>,
    /// Operations checked.
    pub operations: usize,
    /// Verdict.
    pub validity: Validity,
    /// Why unknown, if it is.
    pub unknown_reason: Option<String>,
    /// Configurations the search explored.
    pub configurations: usize,
}

/// What the check found.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Details {
    /// Why the stock operations could not be read, if they could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// True when the history has no stock operation.
    #[serde(default)]
    pub skipped: bool,
    /// The model (`stock`).
    pub model: Option<String>,
    /// Operations checked.
    pub operations: usize,
    /// How long the search took.
    pub elapsed_ms: Option<f64>,
    /// Why unknown, if it is.
    pub unknown_reason: Option<String>,
    /// The failing operation, if not linearizable.
    pub failure: Option<Failure>,
    /// Per SKU.
    #[serde(default)]
    pub skus: Vec<SkuVerdict>,
}

/// The check.
pub struct Linearizability;

fn op_row(sku: bool, o: &OpView) -> Vec<String> {
    let mut row = Vec::new();
    if sku {
        row.push(o.sku.clone());
    } else {
        row.push(opt(o.position));
    }
    row.extend([
        o.index.to_string(),
        o.process.clone(),
        opt(o.node.as_deref()),
        o.op.clone(),
        num(o.invoked_s),
        opt_num(o.completed_s),
    ]);
    row
}

impl Check for Linearizability {
    const ID: CheckId = CheckId::Linearizability;
    type Details = Details;

    fn run(run: &RunData, p: &Params) -> Verdict<Details> {
        analyze_inventory(&run.history, &run.final_state, &p.linearizability).verdict()
    }

    fn tables(d: &Details) -> Vec<Table> {
        let op_cols = [
            "index",
            "process",
            "node",
            "operation",
            "invoked (s)",
            "completed (s)",
        ];
        let mut out = Vec::new();
        if let Some(f) = &d.failure {
            let mut cols = vec!["SKU"];
            cols.extend(op_cols);
            cols.extend(["operations before it", "stock they leave"]);
            out.push(Table::of(
                "The operation that cannot be linearized: no order of the operations before it \
                 (below) and those still open explains its result",
                &cols,
                std::slice::from_ref(f),
                0,
                |f| {
                    let mut row = op_row(true, &f.operation);
                    row.push(f.prefix_length.to_string());
                    row.push(f.stock_after_prefix.clone());
                    row
                },
            ));
            let mut cols = vec!["#"];
            cols.extend(op_cols);
            out.push(Table::of(
                "End of the longest linearizable prefix before it, in linearization order",
                &cols,
                &f.prefix_tail,
                f.prefix_not_listed,
                |o| op_row(false, o),
            ));
        }
        out.push(Table::of(
            "Per SKU",
            &[
                "SKU",
                "initial stock",
                "operations",
                "verdict",
                "configurations explored",
                "why unknown",
            ],
            &d.skus,
            0,
            |k| {
                vec![
                    k.sku.clone(),
                    opt(k.initial),
                    k.operations.to_string(),
                    k.validity.to_string(),
                    k.configurations.to_string(),
                    opt(k.unknown_reason.as_deref()),
                ]
            },
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves the linearizability check's evidence names the failing operation (SKU, index,
    /// process, node, times, the stock the prefix leaves), lists the prefix before it with
    /// positions and a note for the operations left out, and gives each SKU's verdict; a valid
    /// result has no failure tables.
    #[test]
    fn tables_name_the_failing_operation() {
        let op = |index: u64, text: &str, position| OpView {
            position,
            index,
            process: "3".into(),
            node: Some("n2".into()),
            sku: "stock-0".into(),
            op: text.into(),
            invoked_s: 1.25,
            completed_s: Some(1.5),
        };
        let mut d = Details {
            failure: Some(Failure {
                sku: "stock-0".into(),
                operation: op(73, "read -> 2", None),
                stock_after_prefix: "1".into(),
                prefix_length: 7,
                prefix_not_listed: 6,
                prefix_tail: vec![op(10, "reserve 2 ok", Some(7))],
            }),
            skus: vec![SkuVerdict {
                sku: "stock-0".into(),
                initial: Some(10),
                operations: 435,
                validity: Validity::Invalid,
                unknown_reason: None,
                configurations: 42,
            }],
            ..Details::default()
        };
        let t = Linearizability::tables(&d);
        assert_eq!(t.len(), 3, "{t:?}");
        assert_eq!(
            t[0].rows,
            vec![vec![
                "stock-0",
                "73",
                "3",
                "n2",
                "read -> 2",
                "1.25",
                "1.5",
                "7",
                "1"
            ]]
        );
        assert_eq!(t[1].rows[0][..5], ["7", "10", "3", "n2", "reserve 2 ok"]);
        assert!(t[1].note.as_deref().is_some_and(|n| n.contains('6')));
        assert_eq!(t[2].rows[0][..4], ["stock-0", "10", "435", "invalid"]);
        d.failure = None;
        d.skus.clear();
        assert!(Linearizability::tables(&d).iter().all(Table::is_empty));
    }
}
