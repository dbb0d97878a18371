//! The heal ledger: a JSON-lines file in the run directory. A fault is written here *before* it
//! starts and marked healed after its heal succeeds, so whatever ends the harness (Ctrl-C, a
//! panic, SIGKILL) the faults still standing can be listed and healed.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context;
pub use formats::ledger::FILE;

use crate::fault::ActiveFault;

type Entry = formats::ledger::LedgerEntry<ActiveFault>;

/// An append-only, fsynced ledger.
#[derive(Debug, Clone)]
pub struct HealLedger {
    path: PathBuf,
    lock: Arc<Mutex<()>>,
}

impl HealLedger {
    /// The ledger at `path` (created on first write).
    pub fn new(path: PathBuf) -> HealLedger {
        HealLedger {
            path,
            lock: Arc::new(Mutex::new(())),
        }
    }

    /// The ledger of a run directory.
    pub fn in_run_dir(dir: &Path) -> HealLedger {
        HealLedger::new(dir.join(FILE))
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn append(&self, entry: &Entry) -> anyhow::Result<()> {
        let _g = self
            .lock
            .lock()
            .map_err(|_| anyhow::anyhow!("ledger lock poisoned"))?;
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .with_context(|| format!("opening heal ledger {}", self.path.display()))?;
        let mut line = serde_json::to_vec(entry)?;
        line.push(b'\n');
        f.write_all(&line)?;
        f.sync_all()
            .with_context(|| format!("syncing heal ledger {}", self.path.display()))?;
        Ok(())
    }

    /// Records that `fault` is about to start.
    pub fn started(&self, id: &str, fault: &ActiveFault) -> anyhow::Result<()> {
        self.append(&Entry::Start {
            id: id.to_owned(),
            fault: fault.clone(),
        })
    }

    /// Records that the fault `id` is healed.
    pub fn healed(&self, id: &str) -> anyhow::Result<()> {
        self.append(&Entry::Healed { id: id.to_owned() })
    }

    /// Faults started and not healed, in start order. A missing ledger has none. A torn last
    /// line (the writer died mid-write) is ignored: its fault had not started yet.
    pub fn pending(&self) -> anyhow::Result<Vec<(String, ActiveFault)>> {
        let f = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("reading heal ledger {}", self.path.display()))
            }
        };
        let mut open: BTreeMap<usize, (String, ActiveFault)> = BTreeMap::new();
        let mut by_id: BTreeMap<String, usize> = BTreeMap::new();
        let lines: Vec<String> = BufReader::new(f).lines().collect::<Result<_, _>>()?;
        let last = lines.len();
        for (i, line) in lines.iter().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let entry: Entry = match serde_json::from_str(line) {
                Ok(e) => e,
                Err(_) if i + 1 == last => break,
                Err(e) => anyhow::bail!("{}: line {}: {e}", self.path.display(), i + 1),
            };
            match entry {
                Entry::Start { id, fault } => {
                    by_id.insert(id.clone(), i);
                    open.insert(i, (id, fault));
                }
                Entry::Healed { id } => {
                    if let Some(at) = by_id.remove(&id) {
                        open.remove(&at);
                    }
                }
            }
        }
        Ok(open.into_values().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves the ledger lists exactly the faults started and not healed, and survives a torn
    /// last line.
    #[test]
    fn pending_lists_unhealed_faults() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ledger = HealLedger::in_run_dir(dir.path());
        assert!(ledger.pending().expect("empty").is_empty());
        let a = ActiveFault::Pause {
            node: "n1".into(),
            role: formats::Role::Payment,
            pid: 11,
        };
        let b = ActiveFault::Pause {
            node: "n2".into(),
            role: formats::Role::Order,
            pid: 22,
        };
        ledger.started("f1", &a).expect("write");
        ledger.started("f2", &b).expect("write");
        ledger.healed("f1").expect("write");
        let mut raw = std::fs::read_to_string(ledger.path()).expect("read");
        raw.push_str("{\"op\":\"start\",\"id\":\"f3\",\"fau");
        std::fs::write(ledger.path(), raw).expect("write");
        let pending = ledger.pending().expect("pending");
        assert_eq!(pending, vec![("f2".to_owned(), b)]);
    }
}
