//! Reading a run directory: the history, the final state and the spec, with errors that name the
//! file and the line of anything malformed.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use formats::final_state::FinalState;
use formats::history::{Header, Op, SCHEMA_VERSION};
use formats::spec::Spec;
use formats::Role;

use crate::metrics::{read_metrics, Metrics};

/// File names inside a run directory.
pub use formats::files;

/// Why a run directory could not be read. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file is missing or unreadable.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A line does not parse.
    #[error("{path}: line {line}: {message}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
    /// The last line stops mid-record: the writer was cut off.
    #[error("{path}: line {line}: truncated record (the file ends mid-line)")]
    Truncated {
        /// The file.
        path: PathBuf,
        /// 1-based line number of the partial record.
        line: usize,
    },
    /// The header names a schema version this checker does not read.
    #[error("{path}: line 1: schema version {found}, this checker reads version {expected}")]
    SchemaVersion {
        /// The file.
        path: PathBuf,
        /// The version in the file.
        found: u32,
        /// [`SCHEMA_VERSION`].
        expected: u32,
    },
    /// A JSON document does not parse.
    #[error("{path}: {message}")]
    Json {
        /// The file.
        path: PathBuf,
        /// serde's message, with line and column.
        message: String,
    },
}

/// A parsed history: header and operations in file order.
#[derive(Debug, Clone)]
pub struct History {
    /// The first line.
    pub header: Header,
    /// Every operation.
    pub ops: Vec<Op>,
}

/// Reads `history.jsonl`. Malformed, truncated or out-of-order lines are errors naming the line.
pub fn read_history(path: &Path) -> Result<History, ReadError> {
    let file = fs::File::open(path).map_err(|source| ReadError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut reader = BufReader::new(file);
    let mut header: Option<Header> = None;
    let mut ops = Vec::new();
    let mut buf = String::new();
    let mut line_no = 0usize;
    loop {
        buf.clear();
        let n = reader.read_line(&mut buf).map_err(|source| ReadError::Io {
            path: path.to_owned(),
            source,
        })?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let complete = buf.ends_with('\n');
        let text = buf.trim_end_matches(['\n', '\r']);
        if text.trim().is_empty() {
            if complete {
                continue;
            }
            break;
        }
        let malformed = |message: String| {
            if complete {
                ReadError::Malformed {
                    path: path.to_owned(),
                    line: line_no,
                    message,
                }
            } else {
                ReadError::Truncated {
                    path: path.to_owned(),
                    line: line_no,
                }
            }
        };
        if header.is_none() {
            let h: Header = serde_json::from_str(text)
                .map_err(|e| malformed(format!("expected the history header: {e}")))?;
            if h.schema_version != SCHEMA_VERSION {
                return Err(ReadError::SchemaVersion {
                    path: path.to_owned(),
                    found: h.schema_version,
                    expected: SCHEMA_VERSION,
                });
            }
            header = Some(h);
            continue;
        }
        let op: Op = serde_json::from_str(text).map_err(|e| malformed(e.to_string()))?;
        if let Some(prev) = ops.last() {
            let prev: &Op = prev;
            if op.index <= prev.index {
                return Err(malformed(format!(
                    "index {} does not follow index {}",
                    op.index, prev.index
                )));
            }
        }
        ops.push(op);
    }
    let header = header.ok_or_else(|| ReadError::Malformed {
        path: path.to_owned(),
        line: 1,
        message: "empty history: no header line".into(),
    })?;
    Ok(History { header, ops })
}

/// Reads a JSON document such as `final-state.json` or `spec.json`.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ReadError> {
    let bytes = fs::read(path).map_err(|source| ReadError::Io {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|e| ReadError::Json {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

/// Everything the checks need from a run directory.
#[derive(Debug, Clone)]
pub struct RunData {
    /// The run directory.
    pub dir: PathBuf,
    /// `spec.json`.
    pub spec: Spec,
    /// What reading an older `spec.json` could not carry over, if anything.
    pub spec_note: Option<String>,
    /// `history.jsonl`.
    pub history: History,
    /// `final-state.json`.
    pub final_state: FinalState,
    /// `metrics.csv`; `None` when the run has none (checks that need it say unknown).
    pub metrics: Option<Metrics>,
}

/// Reads `spec.json` of any version the formats crate knows.
pub fn read_spec(path: &Path) -> Result<(Spec, Option<String>), ReadError> {
    let v: serde_json::Value = read_json(path)?;
    Spec::from_json(v).map_err(|e| ReadError::Json {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

impl RunData {
    /// Loads the spec, history and final state of `dir`.
    pub fn load(dir: &Path) -> Result<RunData, ReadError> {
        let (spec, spec_note) = read_spec(&dir.join(files::SPEC))?;
        let history = read_history(&dir.join(files::HISTORY))?;
        let final_state = read_json(&dir.join(files::FINAL_STATE))?;
        let metrics_path = dir.join(files::METRICS);
        let metrics = if metrics_path.exists() {
            Some(read_metrics(&metrics_path)?)
        } else {
            None
        };
        Ok(RunData {
            dir: dir.to_owned(),
            spec,
            spec_note,
            history,
            final_state,
            metrics,
        })
    }

    /// True if the run deployed `role`, by any evidence: the spec's `roles`, the services read
    /// after quiesce, metrics scraped from it, or its logs.
    pub fn had_role(&self, role: Role) -> bool {
        self.spec.roles.contains(&role)
            || self.final_state.has_service(role)
            || self
                .metrics
                .as_ref()
                .is_some_and(|m| m.has_role(role.as_str()))
            || !crate::logs::role_logs(&self.dir, role.as_str()).is_empty()
    }
}
