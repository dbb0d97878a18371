//! The sequential models, compiled: each key's operations become a [`Part`] of compact commands
//! over a `u64` state, so the search steps a model with one `match` and no allocation.
//!
//! States: a register holds the id of an interned JSON value (0 is the initial value); a kv
//! value is a node of a byte trie, so equal strings are equal ids however they were built (0 is
//! `""`); a stock level is the `i64` itself.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::op::{Call, LinHistory, ModelKind, Operation, Outcome, Val};

/// A fast non-cryptographic hasher for small integer keys (the FxHash multiply-rotate).
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

impl Hasher for FxHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.write_u64(u64::from_le_bytes(w));
        }
        for b in chunks.remainder() {
            self.write_u64(u64::from(*b));
        }
    }
    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

/// A `HashMap` with [`FxHasher`].
pub(crate) type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// One operation as the search sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Cmd {
    /// Observes the state: it must equal the value.
    Read(u64),
    /// Sets the state.
    Write(u64),
    /// Succeeded: the state was `from`, it becomes `to`.
    Cas(u64, u64),
    /// Failed: the state was not `from`; unchanged.
    CasFailed(u64),
    /// Indeterminate: if it took effect, the state was `from` and became `to`; if the state was
    /// not `from` it failed and changed nothing. (Not happening at all is the same as happening
    /// last, which the search always can do because its call stays open.)
    CasMaybe(u64, u64),
    /// Appends string number `n` of the part's append table.
    Append(u32),
    /// Succeeded: stock >= q, subtracts q.
    Reserve(i64),
    /// Failed: stock < q; unchanged.
    ReserveFailed(i64),
    /// Indeterminate: subtracts q if stock >= q, else changes nothing.
    ReserveMaybe(i64),
    /// Adds q.
    Release(i64),
}

/// Byte trie of kv strings: node ids are canonical, so state equality is string equality.
#[derive(Debug, Default)]
pub(crate) struct Strings {
    parent: Vec<u32>,
    last: Vec<u8>,
    child: FxMap<(u32, u8), u32>,
    appends: Vec<Box<[u8]>>,
    memo: FxMap<(u64, u32), u64>,
}

impl Strings {
    fn new() -> Strings {
        Strings {
            parent: vec![u32::MAX],
            last: vec![0],
            ..Strings::default()
        }
    }

    fn walk(&mut self, mut node: u32, bytes: &[u8]) -> u32 {
        for &b in bytes {
            node = match self.child.get(&(node, b)) {
                Some(&n) => n,
                None => {
                    let n = self.parent.len() as u32;
                    self.parent.push(node);
                    self.last.push(b);
                    self.child.insert((node, b), n);
                    n
                }
            };
        }
        node
    }

    fn intern(&mut self, s: &str) -> u64 {
        u64::from(self.walk(0, s.as_bytes()))
    }

    fn add_append(&mut self, s: &str) -> u32 {
        self.appends.push(s.as_bytes().into());
        (self.appends.len() - 1) as u32
    }

    #[inline]
    fn append(&mut self, node: u64, n: u32) -> u64 {
        if let Some(&to) = self.memo.get(&(node, n)) {
            return to;
        }
        let bytes = std::mem::take(&mut self.appends[n as usize]);
        let to = u64::from(self.walk(node as u32, &bytes));
        self.appends[n as usize] = bytes;
        self.memo.insert((node, n), to);
        to
    }

    fn text(&self, node: u64) -> String {
        let mut bytes = Vec::new();
        let mut n = node as u32;
        while n != 0 && (n as usize) < self.parent.len() {
            bytes.push(self.last[n as usize]);
            n = self.parent[n as usize];
        }
        bytes.reverse();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    fn bytes(&self) -> usize {
        self.parent.capacity() * 5
            + self.child.capacity() * 12
            + self.memo.capacity() * 20
            + self.appends.iter().map(|a| a.len() + 16).sum::<usize>()
    }
}

/// The per-part model: steps commands and renders states.
#[derive(Debug)]
pub(crate) struct Machine {
    kind: ModelKind,
    values: Vec<serde_json::Value>,
    value_ids: HashMap<String, u64>,
    strings: Strings,
}

impl Machine {
    fn new(kind: ModelKind, register_initial: &serde_json::Value) -> Machine {
        let mut m = Machine {
            kind,
            values: Vec::new(),
            value_ids: HashMap::new(),
            strings: Strings::new(),
        };
        if kind == ModelKind::Register {
            m.value(register_initial);
        }
        m
    }

    fn value(&mut self, v: &serde_json::Value) -> u64 {
        let text = v.to_string();
        if let Some(&id) = self.value_ids.get(&text) {
            return id;
        }
        let id = self.values.len() as u64;
        self.values.push(v.clone());
        self.value_ids.insert(text, id);
        id
    }

    /// Encodes a value of the input as a state of this model.
    fn encode(&mut self, v: &Val) -> Result<u64, String> {
        match (self.kind, v) {
            (ModelKind::Register, Val::Json(j)) => Ok(self.value(j)),
            (ModelKind::Register, Val::Text(s)) => Ok(self.value(&serde_json::Value::from(&**s))),
            (ModelKind::Register, Val::Int(n)) => Ok(self.value(&serde_json::Value::from(*n))),
            (ModelKind::Kv, Val::Text(s)) => Ok(self.strings.intern(s)),
            (ModelKind::Kv, Val::Int(n)) => Ok(self.strings.intern(&n.to_string())),
            (ModelKind::Kv, Val::Json(serde_json::Value::Null)) => Ok(0),
            (ModelKind::Stock, Val::Int(n)) => Ok(*n as u64),
            (kind, v) => Err(format!("value {v} does not fit the {kind} model")),
        }
    }

    /// Applies `cmd` to `state`: the next state, or `None` if the command cannot happen there.
    #[inline(always)]
    pub(crate) fn step(&mut self, state: u64, cmd: Cmd) -> Option<u64> {
        match cmd {
            Cmd::Read(v) => (state == v).then_some(state),
            Cmd::Write(v) => Some(v),
            Cmd::Cas(from, to) => (state == from).then_some(to),
            Cmd::CasFailed(from) => (state != from).then_some(state),
            Cmd::CasMaybe(from, to) => Some(if state == from { to } else { state }),
            Cmd::Append(n) => Some(self.strings.append(state, n)),
            Cmd::Reserve(q) => {
                let s = state as i64;
                (s >= q).then(|| (s - q) as u64)
            }
            Cmd::ReserveFailed(q) => ((state as i64) < q).then_some(state),
            Cmd::ReserveMaybe(q) => {
                let s = state as i64;
                Some(if s >= q { (s - q) as u64 } else { state })
            }
            Cmd::Release(q) => (state as i64).checked_add(q).map(|s| s as u64),
        }
    }

    /// A state as a person reads it.
    pub(crate) fn render(&self, state: u64) -> String {
        match self.kind {
            ModelKind::Register => self
                .values
                .get(state as usize)
                .map(|v| v.to_string())
                .unwrap_or_else(|| format!("#{state}")),
            ModelKind::Kv => format!("{:?}", self.strings.text(state)),
            ModelKind::Stock => (state as i64).to_string(),
        }
    }

    /// Bytes held by the model's tables (they grow during the search for kv appends).
    pub(crate) fn bytes(&self) -> usize {
        self.strings.bytes()
    }
}

/// One key's operations, ready for the search. Operations are ranked by completion (info
/// operations last), so the set of linearized ranks is mostly a full prefix.
#[derive(Debug)]
pub(crate) struct Part {
    /// The key.
    pub key: String,
    /// Command of each rank.
    pub cmds: Vec<Cmd>,
    /// Index into [`LinHistory::ops`] of each rank.
    pub global: Vec<u32>,
    /// Call and return events in history order: `rank * 2` is a call, `rank * 2 + 1` a return.
    pub events: Vec<u32>,
    /// Ranks below this completed; the rest are info operations, open to the end.
    pub done: usize,
    /// The initial state.
    pub init: u64,
    /// The model.
    pub machine: Machine,
}

/// The command for an operation, or `None` when it constrains nothing (a failed read or
/// write did not happen; a read that did not complete observed nothing).
fn command(machine: &mut Machine, op: &Operation) -> Result<Option<Cmd>, String> {
    use Outcome::{Fail, Info, Ok as Done};
    let cmd = match (&op.call, op.outcome) {
        (Call::Read, Done) => match &op.observed {
            Some(v) => Cmd::Read(machine.encode(v)?),
            None => return Ok(None),
        },
        (Call::Read, _) => return Ok(None),
        (Call::Write(_) | Call::Append(_) | Call::Release(_), Fail) => return Ok(None),
        (Call::Write(v), _) => Cmd::Write(machine.encode(v)?),
        (Call::Append(v), _) => {
            let text = match v {
                Val::Text(s) => s.clone(),
                Val::Int(n) => n.to_string(),
                other => return Err(format!("append value {other} is not a string")),
            };
            Cmd::Append(machine.strings.add_append(&text))
        }
        (Call::Cas(from, to), outcome) => {
            let (from, to) = (machine.encode(from)?, machine.encode(to)?);
            match outcome {
                Done => Cmd::Cas(from, to),
                Fail => Cmd::CasFailed(from),
                Info => Cmd::CasMaybe(from, to),
            }
        }
        (Call::Reserve(q), Done) => Cmd::Reserve(*q),
        (Call::Reserve(q), Fail) => Cmd::ReserveFailed(*q),
        (Call::Reserve(q), Info) => Cmd::ReserveMaybe(*q),
        (Call::Release(q), _) => Cmd::Release(*q),
    };
    Ok(Some(cmd))
}

/// Compiles the operations `indices` (all on `key`) of `history`.
pub(crate) fn compile(history: &LinHistory, key: &str, indices: &[u32]) -> Result<Part, String> {
    let mut machine = Machine::new(history.model, &history.register_initial);
    let init = match history.model {
        ModelKind::Register | ModelKind::Kv => 0,
        ModelKind::Stock => match history.initial_stock(key) {
            Some(n) => n as u64,
            None => return Err(format!("no initial stock is known for SKU {key:?}")),
        },
    };
    let mut kept: Vec<(u64, u64, u32, Cmd)> = Vec::with_capacity(indices.len());
    for &i in indices {
        let op = &history.ops[i as usize];
        let cmd = command(&mut machine, op)
            .map_err(|e| format!("{}: {e}", history.source_kind.name(op.source)))?;
        if let Some(cmd) = cmd {
            let ret = op.complete_pos.unwrap_or(u64::MAX);
            if ret < op.invoke_pos {
                return Err(format!(
                    "{}: completes before it is invoked",
                    history.source_kind.name(op.source)
                ));
            }
            kept.push((ret, op.invoke_pos, i, cmd));
        }
    }
    // Rank by completion; info operations (open to the end) last, by invocation.
    kept.sort_unstable_by_key(|&(ret, call, i, _)| (ret, call, i));
    let mut events: Vec<(u64, u32, u32)> = Vec::with_capacity(kept.len() * 2);
    for (rank, &(ret, call, _, _)) in kept.iter().enumerate() {
        let rank = rank as u32;
        events.push((call, 0, rank * 2));
        events.push((ret, 1, rank * 2 + 1));
    }
    // Positions are distinct except the shared end of info operations (ordered by rank there);
    // on a tie a call sorts first, so touching intervals count as concurrent.
    events.sort_unstable();
    let done = kept.iter().filter(|k| k.0 != u64::MAX).count();
    Ok(Part {
        key: key.to_owned(),
        done,
        cmds: kept.iter().map(|k| k.3).collect(),
        global: kept.iter().map(|k| k.2).collect(),
        events: events.into_iter().map(|e| e.2).collect(),
        init,
        machine,
    })
}
