//! Derived views of a history shared by checks and graphs: fault windows and per-second series.

use std::collections::HashMap;

use crate::history::{f, Op, OpType};
use crate::rundir::History;

/// One fault as the nemesis recorded it: from its start invocation to its heal completion.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultWindow {
    /// The fault's id within the run (`value.id`).
    pub id: String,
    /// Its kind, e.g. `pause` (`value.fault`).
    pub fault: String,
    /// A short description of the target (`value.target`, rendered).
    pub target: String,
    /// When the start was invoked.
    pub start_ns: u64,
    /// When the heal completed; `None` if the history ends first.
    pub end_ns: Option<u64>,
}

impl FaultWindow {
    /// A label for legends: `pause n2/order`.
    pub fn label(&self) -> String {
        if self.target.is_empty() {
            self.fault.clone()
        } else {
            format!("{} {}", self.fault, self.target)
        }
    }
}

fn fault_id(op: &Op) -> Option<String> {
    op.value
        .get("id")
        .and_then(|v| v.as_str())
        .map(str::to_owned)
}

fn render_target(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Pairs nemesis start and heal operations by fault id.
pub fn fault_windows(history: &History) -> Vec<FaultWindow> {
    let mut windows: Vec<FaultWindow> = Vec::new();
    let mut by_id: HashMap<String, usize> = HashMap::new();
    for op in history.ops.iter().filter(|o| o.process.is_nemesis()) {
        let Some(id) = fault_id(op) else { continue };
        if op.f == f::FAULT_START && op.op_type == OpType::Invoke {
            by_id.insert(id.clone(), windows.len());
            windows.push(FaultWindow {
                id,
                fault: op
                    .value
                    .get("fault")
                    .and_then(|v| v.as_str())
                    .unwrap_or("fault")
                    .to_owned(),
                target: render_target(op.value.get("target").unwrap_or(&serde_json::Value::Null)),
                start_ns: op.time_ns,
                end_ns: None,
            });
        } else if op.f == f::FAULT_HEAL && op.op_type.is_completion() {
            if let Some(&i) = by_id.get(&id) {
                windows[i].end_ns = Some(op.time_ns);
            }
        }
    }
    windows
}

/// Completions of client operations per whole second, split by outcome.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Throughput {
    /// ok completions per second, index = second since start.
    pub ok: Vec<u64>,
    /// fail completions per second.
    pub fail: Vec<u64>,
    /// info completions per second.
    pub info: Vec<u64>,
}

impl Throughput {
    /// Number of seconds covered.
    pub fn seconds(&self) -> usize {
        self.ok.len()
    }

    /// Largest per-second count of any outcome.
    pub fn peak(&self) -> u64 {
        self.ok
            .iter()
            .chain(&self.fail)
            .chain(&self.info)
            .copied()
            .max()
            .unwrap_or(0)
    }
}

/// Per-second completion counts of client operations whose `f` is `only` (all if `None`).
pub fn throughput(history: &History, only: Option<&str>) -> Throughput {
    let end_s = history
        .ops
        .last()
        .map(|o| (o.time_ns / 1_000_000_000) as usize + 1)
        .unwrap_or(0);
    let mut t = Throughput {
        ok: vec![0; end_s],
        fail: vec![0; end_s],
        info: vec![0; end_s],
    };
    for op in &history.ops {
        if op.process.is_nemesis() || only.is_some_and(|name| name != op.f) {
            continue;
        }
        let s = (op.time_ns / 1_000_000_000) as usize;
        let slot = match op.op_type {
            OpType::Ok => &mut t.ok,
            OpType::Fail => &mut t.fail,
            OpType::Info => &mut t.info,
            OpType::Invoke => continue,
        };
        slot[s] += 1;
    }
    t
}
