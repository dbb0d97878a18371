//! Derived views shared by checks and graphs: fault windows, operation pairs and phases, and
//! per-second series (see [`seams`] for the ones derived from `metrics.csv`).

use std::collections::HashMap;

pub mod seams;

use formats::history::{values::FaultOp, Op, OpType, Process, F};

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
    /// Why the fault did not start, when its start completed with an error (its target was
    /// not found, a command failed): then nothing was injected.
    pub start_error: Option<String>,
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

/// Pairs nemesis start and heal operations by fault id.
pub fn fault_windows(history: &History) -> Vec<FaultWindow> {
    let mut windows: Vec<FaultWindow> = Vec::new();
    let mut by_id: HashMap<String, usize> = HashMap::new();
    for op in history.ops.iter().filter(|o| o.process.is_nemesis()) {
        let Some(value) = op.payload::<FaultOp>() else {
            continue;
        };
        if op.f == F::FaultStart && op.op_type == OpType::Invoke {
            by_id.insert(value.id.clone(), windows.len());
            windows.push(FaultWindow {
                id: value.id,
                fault: value.fault.as_str().to_owned(),
                target: value.target.unwrap_or_default(),
                start_ns: op.time_ns,
                end_ns: None,
                start_error: None,
            });
        } else if op.f == F::FaultStart && op.op_type.is_completion() {
            if let (Some(&i), Some(e)) = (by_id.get(&value.id), &op.error) {
                windows[i].start_error = Some(e.clone());
            }
        } else if op.f == F::FaultHeal && op.op_type.is_completion() {
            if let Some(&i) = by_id.get(&value.id) {
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
pub fn throughput(history: &History, only: Option<F>) -> Throughput {
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
        if op.process.is_nemesis() || only.is_some_and(|f| f != op.f) {
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

/// How an operation ended. `Open` means the history ends before its completion (Jepsen treats
/// it like info: it may or may not have happened).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// It happened.
    Ok,
    /// It did not happen.
    Fail,
    /// It may have happened.
    Info,
    /// No completion in the history.
    Open,
}

impl Outcome {
    /// Lowercase word.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Fail => "fail",
            Outcome::Info => "info",
            Outcome::Open => "open",
        }
    }
}

/// A client invocation and its completion, borrowed from the history.
#[derive(Debug, Clone, Copy)]
pub struct Pair<'a> {
    /// The invoke line.
    pub invoke: &'a Op,
    /// The completion line, if the history has one.
    pub completion: Option<&'a Op>,
}

impl Pair<'_> {
    /// How it ended.
    pub fn outcome(&self) -> Outcome {
        match self.completion.map(|c| c.op_type) {
            Some(OpType::Ok) => Outcome::Ok,
            Some(OpType::Fail) => Outcome::Fail,
            Some(OpType::Info) => Outcome::Info,
            _ => Outcome::Open,
        }
    }

    /// Completion time minus invoke time, if completed.
    pub fn latency_ns(&self) -> Option<u64> {
        self.completion
            .map(|c| c.time_ns.saturating_sub(self.invoke.time_ns))
    }
}

/// Client operations as invoke/completion pairs, in invoke order. A completion without an open
/// invoke is left out here (the history check reports it).
pub fn pairs(history: &History) -> Vec<Pair<'_>> {
    let mut out: Vec<Pair<'_>> = Vec::new();
    let mut open: HashMap<Process, usize> = HashMap::new();
    for op in history.ops.iter().filter(|o| !o.process.is_nemesis()) {
        if op.op_type == OpType::Invoke {
            open.insert(op.process, out.len());
            out.push(Pair {
                invoke: op,
                completion: None,
            });
        } else if let Some(i) = open.remove(&op.process) {
            out[i].completion = Some(op);
        }
    }
    out
}

/// Time of the last operation in the history, in nanoseconds.
pub fn end_ns(history: &History) -> u64 {
    history.ops.last().map(|o| o.time_ns).unwrap_or(0)
}

/// Where an instant falls relative to the faults.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Before the first fault started (the whole run when there were none).
    BeforeFaults,
    /// Inside at least one fault window.
    DuringFaults,
    /// Outside every fault window, after the first fault started.
    AfterFaults,
}

impl Phase {
    /// Every phase in time order.
    pub const ALL: [Phase; 3] = [Phase::BeforeFaults, Phase::DuringFaults, Phase::AfterFaults];

    /// The key in `results.json`: `before-faults`, ...
    pub fn key(self) -> &'static str {
        match self {
            Phase::BeforeFaults => "before-faults",
            Phase::DuringFaults => "during-faults",
            Phase::AfterFaults => "after-faults",
        }
    }

    /// Human words.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::BeforeFaults => "before faults",
            Phase::DuringFaults => "during faults",
            Phase::AfterFaults => "after faults",
        }
    }
}

/// The phase of time `t_ns`. A window not healed by the end of the history lasts to `end_ns`.
pub fn phase_of(t_ns: u64, windows: &[FaultWindow]) -> Phase {
    let first = windows.iter().map(|w| w.start_ns).min();
    match first {
        None => Phase::BeforeFaults,
        Some(f) if t_ns < f => Phase::BeforeFaults,
        Some(_) => {
            let inside = windows
                .iter()
                .any(|w| t_ns >= w.start_ns && w.end_ns.is_none_or(|e| t_ns <= e));
            if inside {
                Phase::DuringFaults
            } else {
                Phase::AfterFaults
            }
        }
    }
}

/// Nanoseconds spent in each phase over `[0, end_ns]`, in [`Phase::ALL`] order.
pub fn phase_durations_ns(windows: &[FaultWindow], end_ns: u64) -> [u64; 3] {
    let mut spans: Vec<(u64, u64)> = windows
        .iter()
        .map(|w| {
            (
                w.start_ns.min(end_ns),
                w.end_ns.unwrap_or(end_ns).min(end_ns),
            )
        })
        .filter(|(s, e)| e > s)
        .collect();
    spans.sort_unstable();
    let mut during = 0u64;
    let mut cur: Option<(u64, u64)> = None;
    for (s, e) in spans {
        cur = match cur {
            Some((cs, ce)) if s <= ce => Some((cs, ce.max(e))),
            Some((cs, ce)) => {
                during += ce - cs;
                Some((s, e))
            }
            None => Some((s, e)),
        };
    }
    if let Some((cs, ce)) = cur {
        during += ce - cs;
    }
    let before = windows
        .iter()
        .map(|w| w.start_ns)
        .min()
        .unwrap_or(end_ns)
        .min(end_ns);
    [before, during, end_ns.saturating_sub(before + during)]
}
