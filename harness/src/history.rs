//! Writes `history.jsonl` as operations happen: a header line, then one line per operation with
//! a strictly increasing index and monotonic nanoseconds since the run started.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use anyhow::Context;
use formats::history::{Header, Op, OpType, Process, F, SCHEMA_VERSION};

struct Inner {
    out: BufWriter<File>,
    next_index: u64,
    error: Option<String>,
}

/// A thread-safe history writer. Lines reach the file on [`HistoryWriter::flush`] (called about
/// once a second by the run and at the end), so a crash loses at most the last second.
pub struct HistoryWriter {
    inner: Mutex<Inner>,
    start: Instant,
}

impl HistoryWriter {
    /// Creates the file and writes the header.
    pub fn create(
        path: &Path,
        run_id: &str,
        started_unix_ms: u64,
    ) -> anyhow::Result<HistoryWriter> {
        let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let mut out = BufWriter::new(file);
        let header = Header {
            schema_version: SCHEMA_VERSION,
            run_id: run_id.to_owned(),
            started_unix_ms,
        };
        serde_json::to_writer(&mut out, &header)?;
        out.write_all(b"\n")?;
        Ok(HistoryWriter {
            inner: Mutex::new(Inner {
                out,
                next_index: 0,
                error: None,
            }),
            start: Instant::now(),
        })
    }

    /// Nanoseconds since the run started.
    pub fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// Appends one operation and returns it.
    pub fn record(
        &self,
        process: Process,
        op_type: OpType,
        f: F,
        value: serde_json::Value,
        node: Option<String>,
        error: Option<String>,
    ) -> Op {
        let mut inner = match self.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let op = Op {
            index: inner.next_index,
            time_ns: self.now_ns(),
            process,
            op_type,
            f,
            value,
            node,
            error,
        };
        inner.next_index += 1;
        let written = serde_json::to_writer(&mut inner.out, &op)
            .map_err(anyhow::Error::from)
            .and_then(|()| inner.out.write_all(b"\n").map_err(Into::into));
        if let Err(e) = written {
            inner.error.get_or_insert(format!("{e:#}"));
        }
        op
    }

    /// Pushes buffered lines to the file and fsyncs it. Reports the first write error seen.
    pub fn flush(&self) -> anyhow::Result<()> {
        let mut inner = match self.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if let Some(e) = &inner.error {
            anyhow::bail!("writing history: {e}");
        }
        inner.out.flush()?;
        inner.out.get_ref().sync_data()?;
        Ok(())
    }
}

impl nemesis::Recorder for HistoryWriter {
    fn nemesis(&self, op_type: OpType, f: F, value: serde_json::Value, error: Option<String>) {
        self.record(Process::NEMESIS, op_type, f, value, None, error);
    }
}
