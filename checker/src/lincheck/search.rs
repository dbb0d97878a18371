//! The search for one part: Wing & Gong's backtracking over a doubly-linked list of call and
//! return entries, with Lowe's memo of (linearized set, state) and the lift/unlift of
//! Lowe/Porcupine.
//!
//! The list holds every entry not yet linearized, in history order. Walking it from the head,
//! a call entry is a candidate: if the model can step it and the resulting configuration is new,
//! it is linearized (its call and return entries are lifted out) and the walk restarts. Reaching
//! a return entry means that operation must already have happened: backtrack by unlifting the
//! last linearized operation and trying the next candidate after it. An empty list is a
//! linearization; backtracking from an empty stack means there is none.
//!
//! Info operations are open to the end, so two of them with the same command are
//! interchangeable once both are invoked: any linearization that places the later one first is
//! still one with the two swapped. The search therefore linearizes the info operations of one
//! command in invocation order only ([`InfoClasses`]). Without that, a run with a hundred
//! timed-out reserves has 2^100 subsets of them to try; with it, one count per command.
//!
//! The loop allocates nothing: the list is four `u32` arrays, the stack is preallocated, and the
//! memo grows by amortised doubling.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use super::cache::{mix_state, Cache, LinSet};
use super::model::{Cmd, FxMap, Part};

const NIL: u32 = u32::MAX;
const HEAD: u32 = 0;

/// How many loop turns pass between looks at the clock and the stop flag.
const CHECK_EVERY_TURNS: u64 = 1 << 10;

/// What bounds a search and lets other parts stop it.
#[derive(Debug)]
pub(crate) struct Budget<'a> {
    /// Past this instant the answer is unknown.
    pub deadline: Instant,
    /// Set when another part was found not linearizable (or the caller gave up).
    pub stop: &'a AtomicBool,
    /// Bytes held by all running searches together.
    pub memory_used: &'a AtomicUsize,
    /// The most they may hold.
    pub memory_limit_bytes: usize,
}

/// Why a search gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exhausted {
    /// The time limit passed.
    Time,
    /// The memory bound was reached.
    Memory,
    /// Another part was not linearizable, so this one's answer no longer matters.
    Stopped,
}

/// The answer for one part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PartVerdict {
    /// A linearization exists.
    Linearizable,
    /// None exists. The longest linearizable prefix found (ranks, in order), the rank of the
    /// operation that could not be placed after it, and the state the prefix ends in.
    NotLinearizable {
        prefix: Vec<u32>,
        stuck: u32,
        state: u64,
    },
    /// The search stopped before an answer.
    Unknown(Exhausted),
}

/// The answer and what it cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PartResult {
    pub verdict: PartVerdict,
    /// Loop turns.
    pub turns: u64,
    /// Configurations memoised.
    pub configurations: usize,
    /// Peak bytes held by the memo and the model.
    pub memory_bytes: usize,
}

/// The doubly-linked list of entries. Node 0 is the head; node `1 + e` is event `e`.
struct List {
    next: Vec<u32>,
    prev: Vec<u32>,
    /// The rank of the operation of each node.
    rank: Vec<u32>,
    /// For a call node, its return node; `NIL` for a return node.
    matching: Vec<u32>,
}

impl List {
    fn new(part: &Part) -> List {
        let n = part.events.len() + 1;
        let mut list = List {
            next: Vec::with_capacity(n),
            prev: Vec::with_capacity(n),
            rank: Vec::with_capacity(n),
            matching: vec![NIL; n],
        };
        let mut return_node = vec![NIL; part.cmds.len()];
        for (i, &e) in part.events.iter().enumerate() {
            if e & 1 == 1 {
                return_node[(e / 2) as usize] = i as u32 + 1;
            }
        }
        list.rank.push(NIL);
        list.prev.push(NIL);
        list.next.push(if n > 1 { 1 } else { NIL });
        for (i, &e) in part.events.iter().enumerate() {
            let node = i as u32 + 1;
            list.rank.push(e / 2);
            list.prev.push(node - 1);
            list.next.push(if (node as usize) + 1 < n {
                node + 1
            } else {
                NIL
            });
            if e & 1 == 0 {
                list.matching[node as usize] = return_node[(e / 2) as usize];
            }
        }
        list
    }

    /// Removes call node `c` and its return node.
    #[inline(always)]
    fn lift(&mut self, c: u32) {
        let (cu, r) = (c as usize, self.matching[c as usize]);
        let ru = r as usize;
        // A call is always followed by at least its own return.
        self.next[self.prev[cu] as usize] = self.next[cu];
        self.prev[self.next[cu] as usize] = self.prev[cu];
        self.next[self.prev[ru] as usize] = self.next[ru];
        if self.next[ru] != NIL {
            self.prev[self.next[ru] as usize] = self.prev[ru];
        }
    }

    /// Puts back what `lift(c)` removed.
    #[inline(always)]
    fn unlift(&mut self, c: u32) {
        let (cu, r) = (c as usize, self.matching[c as usize]);
        let ru = r as usize;
        self.next[self.prev[ru] as usize] = r;
        if self.next[ru] != NIL {
            self.prev[self.next[ru] as usize] = r;
        }
        self.next[self.prev[cu] as usize] = c;
        self.prev[self.next[cu] as usize] = c;
    }
}

/// The longest linearizable prefix seen, kept incrementally: `common` is how much of the
/// current stack still equals the snapshot, so each pushed entry is copied at most once.
struct Longest {
    snapshot: Vec<u32>,
    common: usize,
    stuck: u32,
    state: u64,
    recorded: bool,
}

impl Longest {
    #[inline]
    fn offer(&mut self, stack: &[(u32, u64)], ranks: &[u32], stuck: u32, state: u64) {
        if self.recorded && stack.len() <= self.snapshot.len() {
            return;
        }
        self.snapshot.truncate(self.common);
        self.snapshot.extend(
            stack[self.common..]
                .iter()
                .map(|&(node, _)| ranks[node as usize]),
        );
        self.common = stack.len();
        self.stuck = stuck;
        self.state = state;
        self.recorded = true;
    }
}

/// Info operations grouped by command: within a group they are linearized in rank (invocation)
/// order, so the linearized ones of each group are always its first `next[group]`.
struct InfoClasses {
    /// Ranks below this completed; the rest are info operations.
    done: usize,
    /// For each info rank (`rank - done`): its group and its place in the group.
    of: Vec<(u32, u32)>,
    /// For each group: how many of its operations are linearized.
    next: Vec<u32>,
}

impl InfoClasses {
    fn new(part: &Part) -> InfoClasses {
        let mut groups: FxMap<Cmd, u32> = FxMap::default();
        let mut sizes: Vec<u32> = Vec::new();
        let of = part.cmds[part.done..]
            .iter()
            .map(|cmd| {
                let group = *groups.entry(*cmd).or_insert_with(|| {
                    sizes.push(0);
                    (sizes.len() - 1) as u32
                });
                let place = sizes[group as usize];
                sizes[group as usize] += 1;
                (group, place)
            })
            .collect();
        InfoClasses {
            done: part.done,
            of,
            next: vec![0; sizes.len()],
        }
    }

    /// Whether `rank` may be linearized now: a completed operation, or the first info
    /// operation of its group not yet linearized.
    #[inline(always)]
    fn eligible(&self, rank: u32) -> bool {
        let Some(&(group, place)) = self.of.get((rank as usize).wrapping_sub(self.done)) else {
            return true;
        };
        self.next[group as usize] == place
    }

    #[inline(always)]
    fn linearized(&mut self, rank: u32) {
        if let Some(&(group, _)) = self.of.get((rank as usize).wrapping_sub(self.done)) {
            self.next[group as usize] += 1;
        }
    }

    #[inline(always)]
    fn undone(&mut self, rank: u32) {
        if let Some(&(group, _)) = self.of.get((rank as usize).wrapping_sub(self.done)) {
            self.next[group as usize] -= 1;
        }
    }
}

/// Searches `part` for a linearization.
pub(crate) fn search(part: &mut Part, budget: &Budget<'_>) -> PartResult {
    let n = part.cmds.len();
    let mut list = List::new(part);
    let mut infos = InfoClasses::new(part);
    let mut set = LinSet::new(n, part.done);
    let mut cache = Cache::new();
    let mut stack: Vec<(u32, u64)> = Vec::with_capacity(n);
    let mut longest = Longest {
        snapshot: Vec::new(),
        common: 0,
        stuck: NIL,
        state: part.init,
        recorded: false,
    };
    let mut held = 0usize;
    let mut peak = 0usize;
    let mut state = part.init;
    let mut node = list.next[HEAD as usize];
    let mut turns = 0u64;
    let verdict = loop {
        if list.next[HEAD as usize] == NIL {
            break PartVerdict::Linearizable;
        }
        turns += 1;
        if turns % CHECK_EVERY_TURNS == 0 {
            if budget.stop.load(Ordering::Relaxed) {
                break PartVerdict::Unknown(Exhausted::Stopped);
            }
            if Instant::now() >= budget.deadline {
                break PartVerdict::Unknown(Exhausted::Time);
            }
            let now = cache.bytes() + part.machine.bytes();
            if now != held {
                let total = if now > held {
                    budget.memory_used.fetch_add(now - held, Ordering::Relaxed) + (now - held)
                } else {
                    budget.memory_used.fetch_sub(held - now, Ordering::Relaxed) - (held - now)
                };
                held = now;
                peak = peak.max(now);
                if total > budget.memory_limit_bytes {
                    break PartVerdict::Unknown(Exhausted::Memory);
                }
            }
        }
        let ret = list.matching[node as usize];
        if ret != NIL {
            // A call entry: try to linearize its operation here.
            let rank = list.rank[node as usize];
            if !infos.eligible(rank) {
                node = list.next[node as usize];
                continue;
            }
            if let Some(next) = part.machine.step(state, part.cmds[rank as usize]) {
                set.set(rank);
                let hash = set.hash() ^ mix_state(next);
                let (lo, window) = set.window();
                if cache.insert(hash, next, lo, window) {
                    stack.push((node, state));
                    state = next;
                    infos.linearized(rank);
                    list.lift(node);
                    node = list.next[HEAD as usize];
                    continue;
                }
                set.clear(rank);
            }
            node = list.next[node as usize];
        } else {
            // A return entry: its operation should have happened by now. Backtrack.
            longest.offer(&stack, &list.rank, list.rank[node as usize], state);
            let Some((call, before)) = stack.pop() else {
                break PartVerdict::NotLinearizable {
                    prefix: std::mem::take(&mut longest.snapshot),
                    stuck: longest.stuck,
                    state: longest.state,
                };
            };
            if stack.len() < longest.common {
                longest.common = stack.len();
            }
            set.clear(list.rank[call as usize]);
            infos.undone(list.rank[call as usize]);
            state = before;
            list.unlift(call);
            node = list.next[call as usize];
        }
    };
    budget.memory_used.fetch_sub(held, Ordering::Relaxed);
    PartResult {
        verdict,
        turns,
        configurations: cache.len(),
        memory_bytes: peak.max(cache.bytes() + part.machine.bytes()),
    }
}
