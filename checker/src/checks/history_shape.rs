//! The history-shape check: the history is one the checks can trust. Each client process has at
//! most one open operation, every completion answers the open invocation of its process with the
//! same `f`, and a process whose operation ended in `info` never invokes again.

use std::collections::HashMap;

use formats::history::{OpType, Process, F};
use serde::{Deserialize, Serialize};

use super::Params;
use crate::check::{Check, Verdict};
use crate::report::table::Table;
use crate::rundir::{History, RunData};
use crate::verdict::{CheckId, Validity};

/// How many problems are listed in full.
const MAX_LISTED: usize = 100;

/// The check.
pub struct HistoryShape;

/// What it counted and found.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Details {
    /// Client invocations.
    pub invocations: u64,
    /// ok completions.
    pub ok: u64,
    /// fail completions.
    pub fail: u64,
    /// info completions.
    pub info: u64,
    /// Invocations with no completion at the end.
    pub open_at_end: usize,
    /// Malformed sequences, at most [`MAX_LISTED`].
    pub problems: Vec<String>,
    /// Problems beyond those listed.
    pub problems_not_listed: usize,
}

impl Check for HistoryShape {
    const ID: CheckId = CheckId::History;
    type Details = Details;

    fn run(run: &RunData, _: &Params) -> Verdict<Details> {
        check(&run.history)
    }

    fn tables(d: &Details) -> Vec<Table> {
        vec![Table::list(
            "Malformed sequences",
            &d.problems,
            d.problems_not_listed,
        )]
    }
}

/// Runs the check on a history.
pub fn check(history: &History) -> Verdict<Details> {
    let mut open: HashMap<Process, (u64, F)> = HashMap::new();
    let mut retired: HashMap<Process, u64> = HashMap::new();
    let mut problems: Vec<String> = Vec::new();
    let (mut invokes, mut oks, mut fails, mut infos) = (0u64, 0u64, 0u64, 0u64);
    for op in &history.ops {
        if op.process.is_nemesis() {
            continue;
        }
        match op.op_type {
            OpType::Invoke => {
                invokes += 1;
                if let Some(at) = retired.get(&op.process) {
                    problems.push(format!(
                        "index {}: process {} invokes after its info at index {at}",
                        op.index, op.process
                    ));
                }
                if let Some((at, _)) = open.insert(op.process, (op.index, op.f)) {
                    problems.push(format!(
                        "index {}: process {} invokes while index {at} is still open",
                        op.index, op.process
                    ));
                }
            }
            done => {
                match done {
                    OpType::Ok => oks += 1,
                    OpType::Fail => fails += 1,
                    _ => infos += 1,
                }
                match open.remove(&op.process) {
                    None => problems.push(format!(
                        "index {}: process {} completes with nothing open",
                        op.index, op.process
                    )),
                    Some((at, f)) if f != op.f => problems.push(format!(
                        "index {}: completion f {:?} does not match invoke {at} f {:?}",
                        op.index,
                        op.f.as_str(),
                        f.as_str()
                    )),
                    Some(_) => {}
                }
                if done == OpType::Info {
                    retired.insert(op.process, op.index);
                }
            }
        }
    }
    let validity = if problems.is_empty() {
        Validity::Valid
    } else {
        Validity::Invalid
    };
    let summary = if problems.is_empty() {
        format!(
            "{invokes} invocations: {oks} ok, {fails} fail, {infos} info, {} still open",
            open.len()
        )
    } else {
        format!("{} malformed operation sequences", problems.len())
    };
    Verdict::new(
        validity,
        summary,
        Details {
            invocations: invokes,
            ok: oks,
            fail: fails,
            info: infos,
            open_at_end: open.len(),
            problems_not_listed: problems.len().saturating_sub(MAX_LISTED),
            problems: problems.into_iter().take(MAX_LISTED).collect(),
        },
    )
}
