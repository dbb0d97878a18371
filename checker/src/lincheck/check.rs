//! Checking a whole history: split it by key (P-compositionality: a history is linearizable iff
//! each key's sub-history is), search the parts in parallel on a few threads, biggest first,
//! and stop every other part as soon as one is not linearizable.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::model::{compile, Part};
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
    let mut by_key: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
    for (i, op) in history.ops.iter().enumerate() {
        by_key.entry(op.key.as_str()).or_default().push(i as u32);
    }
    let mut keys: Vec<KeyReport> = Vec::with_capacity(by_key.len());
    let mut parts: Vec<(usize, Part)> = Vec::with_capacity(by_key.len());
    for (slot, (key, indices)) in by_key.iter().enumerate() {
        let mut report = KeyReport {
            key: (*key).to_owned(),
            ops_checked: 0,
            validity: Validity::Unknown,
            unknown_reason: None,
            turns: 0,
            configurations: 0,
            memory_bytes: 0,
        };
        match compile(history, key, indices) {
            Ok(part) => {
                report.ops_checked = part.cmds.len();
                parts.push((slot, part));
            }
            Err(reason) => report.unknown_reason = Some(reason),
        }
        keys.push(report);
    }
    // Biggest first, so the longest part starts at once and the small ones fill in around it.
    parts.sort_by_key(|(_, p)| std::cmp::Reverse(p.cmds.len()));
    let results = run_parts(&mut parts, options, deadline);

    let mut failure = None;
    for ((slot, part), result) in parts.iter().zip(results) {
        let report = &mut keys[*slot];
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

/// Searches every part on up to `options.threads` threads; results in the order of `parts`.
fn run_parts(parts: &mut [(usize, Part)], options: &Options, deadline: Instant) -> Vec<PartResult> {
    let stop = AtomicBool::new(false);
    let memory_used = AtomicUsize::new(0);
    let budget = Budget {
        deadline,
        stop: &stop,
        memory_used: &memory_used,
        memory_limit_bytes: options.memory_limit_bytes,
    };
    let threads = options.threads.clamp(1, parts.len().max(1));
    let queue: Vec<Mutex<Option<&mut Part>>> =
        parts.iter_mut().map(|(_, p)| Mutex::new(Some(p))).collect();
    let results: Vec<Mutex<Option<PartResult>>> = queue.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let work = || loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(slot) = queue.get(i) else { break };
        let Some(part) = slot.lock().map_or(None, |mut g| g.take()) else {
            continue;
        };
        let result = if stop.load(Ordering::Relaxed) {
            PartResult {
                verdict: PartVerdict::Unknown(Exhausted::Stopped),
                turns: 0,
                configurations: 0,
                memory_bytes: 0,
            }
        } else {
            search(part, &budget)
        };
        if matches!(result.verdict, PartVerdict::NotLinearizable { .. }) {
            stop.store(true, Ordering::Relaxed);
        }
        if let Ok(mut r) = results[i].lock() {
            *r = Some(result);
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
            m.into_inner().ok().flatten().unwrap_or(PartResult {
                verdict: PartVerdict::Unknown(Exhausted::Stopped),
                turns: 0,
                configurations: 0,
                memory_bytes: 0,
            })
        })
        .collect()
}
