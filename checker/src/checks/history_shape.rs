//! The history-shape check: the history is one the checks can trust. Each client process has at
//! most one open operation, every completion answers the open invocation of its process with the
//! same `f`, and a process whose operation ended in `info` never invokes again.

use std::collections::HashMap;

use serde_json::json;

use crate::history::{OpType, Process};
use crate::rundir::History;
use crate::verdict::{CheckResult, Validity};

/// How many problems are listed in full.
const MAX_LISTED: usize = 100;

/// Runs the check.
pub fn check(history: &History) -> CheckResult {
    let mut open: HashMap<Process, (u64, &str)> = HashMap::new();
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
                if let Some((at, _)) = open.insert(op.process, (op.index, op.f.as_str())) {
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
                        "index {}: completion f {:?} does not match invoke {at} f {f:?}",
                        op.index, op.f
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
    CheckResult {
        name: "history".into(),
        validity,
        summary,
        details: json!({
            "invocations": invokes,
            "ok": oks,
            "fail": fails,
            "info": infos,
            "open_at_end": open.len(),
            "problems": problems.iter().take(MAX_LISTED).collect::<Vec<_>>(),
            "problems_not_listed": problems.len().saturating_sub(MAX_LISTED),
        }),
    }
}
