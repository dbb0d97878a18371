//! Seeded generators of histories with known answers, for tests and benchmarks.
//!
//! [`generate`] simulates clients of a linearizable store: each process runs one operation at a
//! time, each operation takes effect at a random instant inside its call interval, and results
//! are computed by applying the operations in the order of those instants. The history is
//! therefore linearizable by construction. Some operations end in info (they took effect or not,
//! at random), after which Jepsen-style the process retires and a fresh process id takes its
//! slot. [`break_one_read`] then makes one read impossible, giving a known-invalid history.

use rand::Rng;

use super::op::{Call, LinHistory, ModelKind, Operation, Outcome, SourceKind, Val};

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenSpec {
    /// The model.
    pub model: ModelKind,
    /// Concurrent process slots.
    pub processes: usize,
    /// Operations in all.
    pub ops: usize,
    /// Keys the operations spread over (uniformly).
    pub keys: usize,
    /// Distinct values written (register and kv) or largest quantity (stock).
    pub values: u64,
    /// Chance per thousand that an operation ends in info.
    pub info_per_mille: u32,
    /// Chance per thousand that an operation is a read.
    pub read_per_mille: u32,
    /// Longest call interval, in time units (at least 1).
    pub max_latency: u64,
    /// Initial stock of every SKU (stock model).
    pub initial_stock: i64,
}

impl GenSpec {
    /// A spec with the defaults the tests start from.
    pub fn new(model: ModelKind, processes: usize, ops: usize, keys: usize) -> GenSpec {
        GenSpec {
            model,
            processes,
            ops,
            keys,
            values: 5,
            info_per_mille: 0,
            read_per_mille: 500,
            max_latency: 10,
            initial_stock: 10,
        }
    }
}

/// One generated operation before positions are assigned.
struct Draft {
    op: Operation,
    call_t: u64,
    ret_t: u64,
    /// When it took effect, unless it is an info operation that did not.
    effect_t: Option<u64>,
}

fn draw_call(spec: &GenSpec, rng: &mut impl Rng) -> Call {
    let values = spec.values.max(1);
    let read = rng.gen_range(0..1000) < spec.read_per_mille;
    match spec.model {
        _ if read => Call::Read,
        ModelKind::Register => {
            let v = |rng: &mut dyn rand::RngCore| Val::Json(rng.gen_range(0..values).into());
            if rng.gen_bool(0.5) {
                Call::Write(v(rng))
            } else {
                Call::Cas(v(rng), v(rng))
            }
        }
        ModelKind::Kv => {
            let v = Val::Text(rng.gen_range(0..values).to_string());
            if rng.gen_bool(0.5) {
                Call::Write(v)
            } else {
                Call::Append(v)
            }
        }
        ModelKind::Stock => {
            let q = rng.gen_range(1..=values as i64);
            if rng.gen_bool(0.6) {
                Call::Reserve(q)
            } else {
                Call::Release(q)
            }
        }
    }
}

/// Generates a linearizable history (see the module doc).
pub fn generate(spec: &GenSpec, rng: &mut impl Rng) -> LinHistory {
    let slots = spec.processes.max(1);
    let mut pid: Vec<u64> = (0..slots as u64).collect();
    let mut cursor: Vec<u64> = vec![0; slots];
    let mut drafts: Vec<Draft> = Vec::with_capacity(spec.ops);
    for _ in 0..spec.ops {
        let slot = (0..slots).min_by_key(|&s| (cursor[s], s)).unwrap_or(0);
        let call_t = cursor[slot] + rng.gen_range(1..=3);
        let ret_t = call_t + rng.gen_range(1..=spec.max_latency.max(1));
        let info = rng.gen_range(0..1000) < spec.info_per_mille;
        let effect = rng.gen_range(call_t..=ret_t);
        let effect_t = (!info || rng.gen_bool(0.5)).then_some(effect);
        let key = rng.gen_range(0..spec.keys.max(1));
        drafts.push(Draft {
            op: Operation {
                key: if spec.keys <= 1 {
                    String::new()
                } else {
                    format!("k{key}")
                },
                process: pid[slot].to_string(),
                call: draw_call(spec, rng),
                outcome: if info { Outcome::Info } else { Outcome::Ok },
                observed: None,
                invoke_pos: 0,
                complete_pos: None,
                invoke_time: call_t,
                complete_time: (!info).then_some(ret_t),
                source: 0,
            },
            call_t,
            ret_t,
            effect_t,
        });
        cursor[slot] = ret_t;
        if info {
            pid[slot] += slots as u64;
        }
    }
    apply_effects(spec, &mut drafts);
    assign_positions(spec, drafts)
}

/// Computes results by applying operations in the order they took effect.
fn apply_effects(spec: &GenSpec, drafts: &mut [Draft]) {
    let mut order: Vec<usize> = (0..drafts.len()).collect();
    order.sort_by_key(|&i| (drafts[i].effect_t.unwrap_or(u64::MAX), i));
    let mut state: std::collections::HashMap<String, Val> = std::collections::HashMap::new();
    let initial = match spec.model {
        ModelKind::Register => Val::Json(serde_json::Value::Null),
        ModelKind::Kv => Val::Text(String::new()),
        ModelKind::Stock => Val::Int(spec.initial_stock),
    };
    for i in order {
        let d = &mut drafts[i];
        if d.effect_t.is_none() {
            continue;
        }
        let s = state
            .entry(d.op.key.clone())
            .or_insert_with(|| initial.clone());
        let info = d.op.outcome == Outcome::Info;
        match (&d.op.call, &mut *s) {
            (Call::Read, cur) => d.op.observed = (!info).then(|| cur.clone()),
            (Call::Write(v), cur) => *cur = v.clone(),
            (Call::Cas(from, to), cur) => {
                if cur == from {
                    *cur = to.clone();
                } else if !info {
                    d.op.outcome = Outcome::Fail;
                }
            }
            (Call::Append(Val::Text(a)), Val::Text(cur)) => cur.push_str(a),
            (Call::Reserve(q), Val::Int(cur)) => {
                if *cur >= *q {
                    *cur -= q;
                } else if !info {
                    d.op.outcome = Outcome::Fail;
                }
            }
            (Call::Release(q), Val::Int(cur)) => *cur += q,
            _ => {}
        }
    }
}

/// Orders call and return events by time (a call first on a tie) and numbers them.
fn assign_positions(spec: &GenSpec, mut drafts: Vec<Draft>) -> LinHistory {
    let mut events: Vec<(u64, u8, usize)> = Vec::with_capacity(drafts.len() * 2);
    for (i, d) in drafts.iter().enumerate() {
        events.push((d.call_t, 0, i));
        if d.op.outcome != Outcome::Info {
            events.push((d.ret_t, 1, i));
        }
    }
    events.sort_unstable();
    for (pos, &(_, kind, i)) in events.iter().enumerate() {
        let op = &mut drafts[i].op;
        if kind == 0 {
            op.invoke_pos = pos as u64 + 1;
            op.source = pos as u64 + 1;
        } else {
            op.complete_pos = Some(pos as u64 + 1);
        }
    }
    let mut history = LinHistory::new(spec.model, SourceKind::Line);
    history.stock_default = Some(spec.initial_stock);
    drafts.sort_by_key(|d| d.op.invoke_pos);
    history.ops = drafts.into_iter().map(|d| d.op).collect();
    history
}

/// Makes the history not linearizable: one ok read, chosen at random among the last third,
/// now returns a value no operation ever wrote. Returns false if there is no such read.
pub fn break_one_read(history: &mut LinHistory, rng: &mut impl Rng) -> bool {
    let n = history.ops.len();
    let reads: Vec<usize> = (n * 2 / 3..n)
        .filter(|&i| history.ops[i].outcome == Outcome::Ok && history.ops[i].call == Call::Read)
        .collect();
    if reads.is_empty() {
        return false;
    }
    let i = reads[rng.gen_range(0..reads.len())];
    history.ops[i].observed = Some(match history.model {
        ModelKind::Register => Val::Json("never-written".into()),
        ModelKind::Kv => Val::Text("never-written".into()),
        ModelKind::Stock => Val::Int(-1),
    });
    true
}
