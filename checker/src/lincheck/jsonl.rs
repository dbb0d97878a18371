//! The standalone input of `harness lincheck`: a JSONL file with one event per line,
//!
//! ```text
//! {"process": 0, "type": "invoke", "f": "cas", "key": "x", "value": [1, 2]}
//! {"process": 0, "type": "fail",   "f": "cas", "key": "x"}
//! ```
//!
//! `process` is a number or a string; `type` is invoke, ok, fail or info; `key` is optional (a
//! string or a number); the line order is the order of events. Values by model:
//! - register: `read` (the ok line's value is what it read), `write` v, `cas` `[from, to]`;
//! - kv: `get` (ok value: a string; null reads as ""), `put` s, `append` s (strings or integers);
//! - stock: `reserve` q, `release` q (non-negative integers, or `{"qty": q}`), `read` or
//!   `read-stock` (ok value: the level, or `{"available": n}`).
//!
//! An invocation that never completes counts as info.

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use super::op::{Call, LinHistory, ModelKind, Operation, Outcome, SourceKind, Val};
use formats::history::OpType;

/// The longest line read, in bytes.
pub const MAX_LINE_BYTES: usize = 1 << 20;
/// The most operations a file may hold.
pub const MAX_OPERATIONS: usize = 10_000_000;

/// Why a file could not be read. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The file is missing or unreadable.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A line is not a valid event.
    #[error("{path}: line {line}: {message}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
}

#[derive(Deserialize)]
struct Line {
    process: Value,
    #[serde(rename = "type")]
    op_type: OpType,
    f: String,
    #[serde(default)]
    key: Option<Value>,
    #[serde(default)]
    value: Value,
}

/// Reads the file at `path` as operations of `model`.
pub fn read_file(path: &Path, model: ModelKind) -> Result<LinHistory, InputError> {
    let file = fs::File::open(path).map_err(|source| InputError::Io {
        path: path.to_owned(),
        source,
    })?;
    parse(BufReader::new(file), path, model)
}

/// A process or key name: a string, or a number written as text.
fn name(v: &Value, what: &str) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(format!("{what} {other} is neither a number nor a string")),
    }
}

/// An integer given plainly or as `{field: n}`.
fn integer(v: &Value, field: &str) -> Option<i64> {
    match v {
        Value::Object(m) => m.get(field).and_then(Value::as_i64),
        other => other.as_i64(),
    }
}

fn quantity(v: &Value) -> Result<i64, String> {
    match integer(v, "qty") {
        Some(n) if n >= 0 => Ok(n),
        _ => Err(format!("quantity {v} is not a non-negative integer")),
    }
}

fn text(v: &Value, what: &str) -> Result<Val, String> {
    match v {
        Value::String(s) => Ok(Val::Text(s.clone())),
        Value::Number(n) if n.is_i64() || n.is_u64() => Ok(Val::Text(n.to_string())),
        other => Err(format!("{what} {other} is not a string")),
    }
}

/// The call an invocation line makes.
fn call(model: ModelKind, f: &str, value: &Value) -> Result<Call, String> {
    match (model, f) {
        (ModelKind::Register, "read") => Ok(Call::Read),
        (ModelKind::Register, "write") => Ok(Call::Write(Val::Json(value.clone()))),
        (ModelKind::Register, "cas") => match value.as_array().map(Vec::as_slice) {
            Some([from, to]) => Ok(Call::Cas(Val::Json(from.clone()), Val::Json(to.clone()))),
            _ => Err(format!("cas value {value} is not [from, to]")),
        },
        (ModelKind::Kv, "get" | "read") => Ok(Call::Read),
        (ModelKind::Kv, "put" | "write") => Ok(Call::Write(text(value, "put value")?)),
        (ModelKind::Kv, "append") => Ok(Call::Append(text(value, "append value")?)),
        (ModelKind::Stock, "read" | "read-stock") => Ok(Call::Read),
        (ModelKind::Stock, "reserve") => Ok(Call::Reserve(quantity(value)?)),
        (ModelKind::Stock, "release") => Ok(Call::Release(quantity(value)?)),
        (model, f) => Err(format!(
            "f {f:?} is not an operation of the {model} model ({})",
            match model {
                ModelKind::Register => "read, write, cas",
                ModelKind::Kv => "get, put, append",
                ModelKind::Stock => "reserve, release, read",
            }
        )),
    }
}

/// What an ok read returned.
fn observed(model: ModelKind, value: &Value) -> Result<Val, String> {
    match model {
        ModelKind::Register => Ok(Val::Json(value.clone())),
        ModelKind::Kv if value.is_null() => Ok(Val::Text(String::new())),
        ModelKind::Kv => text(value, "value read"),
        // A negative level is an anomaly to report, not bad input.
        ModelKind::Stock => integer(value, "available")
            .map(Val::Int)
            .ok_or_else(|| format!("stock level read {value} is not an integer")),
    }
}

/// An open invocation: its operation's index, its `f` and its line.
struct Open {
    op: usize,
    f: String,
    line: usize,
}

/// Parses a JSONL stream (see the module doc); `path` only names it in errors.
pub fn parse(reader: impl Read, path: &Path, model: ModelKind) -> Result<LinHistory, InputError> {
    let mut reader = BufReader::new(reader);
    let mut history = LinHistory::new(model, SourceKind::Line);
    let mut open: HashMap<String, Open> = HashMap::new();
    let mut buf = String::new();
    let mut line = 0usize;
    loop {
        buf.clear();
        let n = (&mut reader)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_line(&mut buf)
            .map_err(|source| InputError::Io {
                path: path.to_owned(),
                source,
            })?;
        if n == 0 {
            break;
        }
        line += 1;
        let malformed = |message: String| InputError::Malformed {
            path: path.to_owned(),
            line,
            message,
        };
        if n > MAX_LINE_BYTES {
            return Err(malformed(format!("longer than {MAX_LINE_BYTES} bytes")));
        }
        let text = buf.trim();
        if text.is_empty() {
            continue;
        }
        let event: Line = serde_json::from_str(text).map_err(|e| malformed(e.to_string()))?;
        let process = name(&event.process, "process").map_err(&malformed)?;
        if event.op_type == OpType::Invoke {
            if let Some(o) = open.get(&process) {
                return Err(malformed(format!(
                    "process {process} invokes while its invocation at line {} is still open",
                    o.line
                )));
            }
            if history.ops.len() >= MAX_OPERATIONS {
                return Err(malformed(format!("more than {MAX_OPERATIONS} operations")));
            }
            let key = match &event.key {
                None | Some(Value::Null) => String::new(),
                Some(k) => name(k, "key").map_err(&malformed)?,
            };
            let call = call(model, &event.f, &event.value).map_err(&malformed)?;
            open.insert(
                process.clone(),
                Open {
                    op: history.ops.len(),
                    f: event.f,
                    line,
                },
            );
            history.ops.push(Operation {
                key,
                process,
                call,
                outcome: Outcome::Info,
                observed: None,
                invoke_pos: line as u64,
                complete_pos: None,
                invoke_time: line as u64,
                complete_time: None,
                source: line as u64,
            });
            continue;
        }
        let Some(o) = open.remove(&process) else {
            return Err(malformed(format!(
                "{} for process {process}, which has no open invocation",
                type_name(event.op_type)
            )));
        };
        if o.f != event.f {
            return Err(malformed(format!(
                "completion f {:?} does not match the invocation's f {:?} at line {}",
                event.f, o.f, o.line
            )));
        }
        let op = &mut history.ops[o.op];
        op.outcome = match event.op_type {
            OpType::Ok => Outcome::Ok,
            OpType::Fail => Outcome::Fail,
            _ => Outcome::Info,
        };
        if op.outcome != Outcome::Info {
            op.complete_pos = Some(line as u64);
            op.complete_time = Some(line as u64);
        }
        if op.outcome == Outcome::Ok && op.call == Call::Read {
            op.observed = Some(observed(model, &event.value).map_err(&malformed)?);
        }
    }
    Ok(history)
}

fn type_name(t: OpType) -> &'static str {
    match t {
        OpType::Invoke => "invoke",
        OpType::Ok => "ok",
        OpType::Fail => "fail",
        OpType::Info => "info",
    }
}

/// Writes `history` in this format (one invoke line and, unless open, one completion line per
/// operation, in event order; info operations are left open). Used to export generated histories for other checkers.
pub fn to_jsonl(history: &LinHistory) -> String {
    let mut events: Vec<(u64, u8, usize)> = Vec::with_capacity(history.ops.len() * 2);
    for (i, op) in history.ops.iter().enumerate() {
        events.push((op.invoke_pos, 0, i));
        // An info operation is left open: the same meaning, and no position to invent.
        if let (Outcome::Ok | Outcome::Fail, Some(pos)) = (op.outcome, op.complete_pos) {
            events.push((pos, 1, i));
        }
    }
    events.sort_unstable();
    let mut out = String::with_capacity(events.len() * 64);
    for (_, kind, i) in events {
        let op = &history.ops[i];
        let f = op.f_name(history.model);
        let value = if kind == 0 {
            match &op.call {
                Call::Read => Value::Null,
                Call::Write(v) | Call::Append(v) => val_json(v),
                Call::Cas(a, b) => Value::Array(vec![val_json(a), val_json(b)]),
                Call::Reserve(q) | Call::Release(q) => Value::from(*q),
            }
        } else {
            op.observed.as_ref().map_or(Value::Null, val_json)
        };
        let t = if kind == 0 {
            "invoke"
        } else {
            op.outcome.as_str()
        };
        let mut line =
            serde_json::json!({"process": op.process, "type": t, "f": f, "value": value});
        if !op.key.is_empty() {
            line["key"] = Value::from(op.key.as_str());
        }
        out.push_str(&line.to_string());
        out.push('\n');
    }
    out
}

fn val_json(v: &Val) -> Value {
    match v {
        Val::Json(j) => j.clone(),
        Val::Text(s) => Value::from(s.as_str()),
        Val::Int(n) => Value::from(*n),
    }
}
