//! Checking a whole history: split it by key (P-compositionality: a history is linearizable iff
//! each key's sub-history is), search the parts in parallel on a few threads, biggest first,
//! and stop every other part as soon as one is not linearizable.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::model::{compile, FxMap, Part};
use super::op::LinHistory;
use super::search::{search, Budget, Exhausted, PartResult, PartVerdict};
use crate::verdict::Validity;

/// Bounds of a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Past this the answer is unknown.
    pub time_limit: Duration,
    /// The memo tables of all parts together may hold at most this many bytes; past it the
    /// answer is unknown.
    pub memory_limit_bytes: usize,
    /// Threads searching parts at once (at least 1).
    pub threads: usize,
}

/// Default time limit of a check.
pub const DEFAULT_TIME_LIMIT: Duration = Duration::from_secs(30);
/// Default memory bound of a check: 2 GiB.
pub const DEFAULT_MEMORY_LIMIT_BYTES: usize = 2 << 30;

impl Default for Options {
    fn default() -> Options {
        Options {
            time_limit: DEFAULT_TIME_LIMIT,
            memory_limit_bytes: DEFAULT_MEMORY_LIMIT_BYTES,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// What the check found for one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyReport {
    /// The key.
    pub key: String,
    /// Operations of this key that constrain the search (failed reads and writes and
    /// indeterminate reads are left out).
    pub ops_checked: usize,
    /// Its verdict.
    pub validity: Validity,
    /// Why it is unknown, if it is.
    pub unknown_reason: Option<String>,
    /// Search loop turns.
    pub turns: u64,
    /// Configurations memoised.
    pub configurations: usize,
    /// Peak bytes of the memo and model tables.
    pub memory_bytes: usize,
}

/// Evidence of a violation on one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The key.
    pub key: String,
    /// Index (into [`LinHistory::ops`]) of the operation that could not be linearized after the
    /// longest linearizable prefix.
    pub op: usize,
    /// The longest linearizable prefix found, in linearization order (indexes into the ops).
    pub prefix: Vec<usize>,
    /// The model state after the prefix.
    pub state: String,
}

/// The result of a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Valid, invalid, or unknown.
    pub validity: Validity,
    /// Why it is unknown, if it is.
    pub unknown_reason: Option<String>,
    /// Wall-clock time taken.
    pub elapsed: Duration,
    /// One report per key, in key order.
    pub keys: Vec<KeyReport>,
    /// The violation, when invalid.
    pub failure: Option<Failure>,
}

fn exhausted_reason(e: Exhausted, options: &Options) -> String {
    match e {
        Exhausted::Time => format!("time limit of {:?} reached", options.time_limit),
        Exhausted::Memory => format!(
            "memory bound of {} MiB reached",
            options.memory_limit_bytes >> 20
        ),
        Exhausted::Stopped => "stopped: another key is not linearizable".into(),
    }
}

/// Checks `history` for linearizability against its model.
pub fn check(history: &LinHistory, options: &Options) -> Outcome {
    let started = Instant::now();
    let deadline = started + options.time_limit;
    // Group by key through a hash map (one lookup per operation), then order keys.
    let mut slot_of: FxMap<&str, usize> = FxMap::default();
    let mut groups: Vec<(&str, Vec<u32>)> = Vec::new();
    for (i, op) in history.ops.iter().enumerate() {
        let slot = *slot_of.entry(op.key.as_str()).or_insert_with(|| {
            groups.push((op.key.as_str(), Vec::new()));
            groups.len() - 1
        });
        groups[slot].1.push(i as u32);
    }
    groups.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut keys: Vec<KeyReport> = groups
        .iter()
        .map(|(key, _)| KeyReport {
            key: (*key).to_owned(),
            ops_checked: 0,
            validity: Validity::Unknown,
            unknown_reason: None,
            turns: 0,
            configurations: 0,
            memory_bytes: 0,
        })
        .collect();
    // Biggest first, so the longest part starts at once and the small ones fill in around it.
    let mut order: Vec<usize> = (0..groups.len()).collect();
    order.sort_by_key(|&slot| std::cmp::Reverse(groups[slot].1.len()));
    let done = run_parts(history, &groups, &order, options, deadline);

    let mut failure = None;
    for (slot, compiled) in order.into_iter().zip(done) {
        let report = &mut keys[slot];
        let (part, result) = match compiled {
            Ok(pair) => pair,
            Err(reason) => {
                report.unknown_reason = Some(reason);
                continue;
            }
        };
        report.ops_checked = part.cmds.len();
        report.turns = result.turns;
        report.configurations = result.configurations;
        report.memory_bytes = result.memory_bytes;
        match result.verdict {
            PartVerdict::Linearizable => report.validity = Validity::Valid,
            PartVerdict::NotLinearizable {
                prefix,
                stuck,
                state,
            } => {
                report.validity = Validity::Invalid;
                let this = Failure {
                    key: part.key.clone(),
                    op: part.global[stuck as usize] as usize,
                    prefix: prefix
                        .iter()
                        .map(|&r| part.global[r as usize] as usize)
                        .collect(),
                    state: part.machine.render(state),
                };
                // Several parts may finish invalid before the stop lands: keep the first key.
                if failure.as_ref().is_none_or(|f: &Failure| this.key < f.key) {
                    failure = Some(this);
                }
            }
            PartVerdict::Unknown(e) => {
                report.validity = Validity::Unknown;
                report.unknown_reason = Some(exhausted_reason(e, options));
            }
        }
    }
    let validity = Validity::all(keys.iter().map(|k| k.validity));
    let unknown_reason = match validity {
        Validity::Unknown => keys
            .iter()
            .find_map(|k| {
                k.unknown_reason
                    .as_ref()
                    .map(|r| format!("key {:?}: {r}", k.key))
            })
            .or_else(|| Some("unknown".into())),
        _ => None,
    };
    Outcome {
        validity,
        unknown_reason,
        elapsed: started.elapsed(),
        keys,
        failure,
    }
}

/// What one key came to: its compiled part and search result, or why it could not be compiled.
type Done = Result<(Part, PartResult), String>;

/// Compiles and searches the parts `order` names on up to `options.threads` threads; results
/// in the order of `order`.
fn run_parts(
    history: &LinHistory,
    groups: &[(&str, Vec<u32>)],
    order: &[usize],
    options: &Options,
    deadline: Instant,
) -> Vec<Done> {
    let stop = AtomicBool::new(false);
    let memory_used = AtomicUsize::new(0);
    let budget = Budget {
        deadline,
        stop: &stop,
        memory_used: &memory_used,
        memory_limit_bytes: options.memory_limit_bytes,
    };
    let threads = options.threads.clamp(1, order.len().max(1));
    let results: Vec<Mutex<Option<Done>>> = order.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let stopped = || PartResult {
        verdict: PartVerdict::Unknown(Exhausted::Stopped),
        turns: 0,
        configurations: 0,
        memory_bytes: 0,
    };
    let work = || loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(&slot) = order.get(i) else { break };
        let (key, indices) = &groups[slot];
        let done = compile(history, key, indices).map(|mut part| {
            let result = if stop.load(Ordering::Relaxed) {
                stopped()
            } else {
                search(&mut part, &budget)
            };
            if matches!(result.verdict, PartVerdict::NotLinearizable { .. }) {
                stop.store(true, Ordering::Relaxed);
            }
            (part, result)
        });
        if let Ok(mut r) = results[i].lock() {
            *r = Some(done);
        }
    };
    if threads == 1 {
        work();
    } else {
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(work);
            }
        });
    }
    results
        .into_iter()
        .map(|m| {
            m.into_inner()
                .ok()
                .flatten()
                .unwrap_or_else(|| Err("the search thread failed".into()))
        })
        .collect()
}
