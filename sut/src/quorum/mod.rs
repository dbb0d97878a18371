//! The quorum client every service uses for its state: writes go to all N replicas and succeed
//! on W acknowledgements; reads ask the replicas, wait for R answers, return the newest version
//! and write it back to the stale ones (read repair). With R + W > N a read sees every
//! acknowledged write.
//!
//! A write's outcome is three-valued, like a history entry: [`WriteOutcome::Ok`] (W acks),
//! [`WriteOutcome::Failed`] (every replica refused: definitely not applied) or
//! [`WriteOutcome::Unknown`] (anything else: it may be on some replicas and surface later).
//!
//! Every token a replica reports (in write, read and scan answers and in fenced refusals) goes
//! into the client's [`TokenFloor`], also from the answers that arrive after the quorum was
//! reached, so that the domain's elector learns when a replica has promised a higher token.

pub mod floor;
mod merge;
pub mod replicas;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::mpsc;

use self::floor::TokenFloor;
use self::merge::{merge_pages, missing_from, newest_per_key, stale_records};
use self::replicas::{Replicas, Reply};
use crate::config::QuorumSpec;
use crate::store::wire::{
    ReadBody, ReadReply, Record, RepairBody, RepairReply, ScanReply, Version, WriteBody,
    WriteEntry, WriteReply, MAX_BATCH_ENTRIES,
};

/// How long a scan waits for the replicas beyond the R-th answer.
const SCAN_GRACE: Duration = Duration::from_millis(100);
/// Pages [`Quorum::scan_all`] reads at most.
pub const MAX_SCAN_PAGES: usize = 1000;

/// The outcome of a quorum write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    /// At least W replicas stored it (or a newer version).
    Ok(Version),
    /// Every replica refused: definitely not applied.
    Failed {
        /// The highest `current_token` of replicas that refused it as fenced.
        fenced_by: Option<u64>,
        /// Why.
        reason: String,
    },
    /// Fewer than W acks without a refusal from all: may be on some replicas.
    Unknown {
        /// As in `Failed`.
        fenced_by: Option<u64>,
        /// Why.
        reason: String,
    },
}

impl WriteOutcome {
    /// The token of a replica that fenced this write, if any did.
    pub fn fenced_by(&self) -> Option<u64> {
        match self {
            WriteOutcome::Ok(_) => None,
            WriteOutcome::Failed { fenced_by, .. } | WriteOutcome::Unknown { fenced_by, .. } => {
                *fenced_by
            }
        }
    }
}

/// A read or scan that could not reach R replicas.
#[derive(Debug, Clone, thiserror::Error)]
#[error("quorum of {state}: {reason}")]
pub struct Unavailable {
    /// The kind of state.
    pub state: &'static str,
    /// Why.
    pub reason: String,
}

/// Sequences for versions: increasing per process, distinct per node in the low bits.
struct SeqClock {
    last: AtomicU64,
    node_bits: u64,
}

impl SeqClock {
    fn next(&self) -> u64 {
        let now_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0);
        let candidate = now_us.saturating_mul(8) | self.node_bits;
        let mut last = self.last.load(Ordering::Relaxed);
        loop {
            let next = candidate.max(last + 1);
            match self
                .last
                .compare_exchange(last, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return next,
                Err(seen) => last = seen,
            }
        }
    }
}

/// A quorum client for one kind of state in one store domain.
#[derive(Clone)]
pub struct Quorum {
    inner: Arc<Inner>,
}

struct Inner {
    replicas: Replicas,
    spec: QuorumSpec,
    state: &'static str,
    domain: String,
    clock: SeqClock,
    floor: TokenFloor,
}

impl Quorum {
    /// A client for `state` in `domain` over the first `spec.n` of `all` replicas.
    pub fn new(
        all: &Replicas,
        spec: QuorumSpec,
        state: &'static str,
        domain: &str,
        node_index: usize,
    ) -> Quorum {
        Quorum {
            inner: Arc::new(Inner {
                replicas: all.first(spec.n),
                spec,
                state,
                domain: domain.to_owned(),
                clock: SeqClock {
                    last: AtomicU64::new(0),
                    node_bits: (node_index % 8) as u64,
                },
                floor: TokenFloor::new(),
            }),
        }
    }

    /// The quorum sizes.
    pub fn spec(&self) -> QuorumSpec {
        self.inner.spec
    }

    /// The store domain.
    pub fn domain(&self) -> &str {
        &self.inner.domain
    }

    /// The highest token the replicas have reported to this client (share it with the
    /// domain's elector).
    pub fn floor(&self) -> &TokenFloor {
        &self.inner.floor
    }

    /// Feeds the token in replica `i`'s answer to a write into the floor.
    fn observe_write(&self, i: usize, reply: &Reply<WriteReply>) {
        let token = match reply {
            Reply::Ok(r) => Some(r.current_token),
            Reply::Refused { current_token, .. } => *current_token,
            Reply::Failed(_) => None,
        };
        if let Some(t) = token {
            self.inner.floor.observe(t, self.inner.replicas.node(i));
        }
    }

    fn unavailable(&self, reason: String) -> Unavailable {
        Unavailable {
            state: self.inner.state,
            reason,
        }
    }

    /// Writes `entries` under `token` (one version for all, atomic on each replica).
    pub async fn write(
        &self,
        token: u64,
        entries: Vec<(String, serde_json::Value)>,
    ) -> WriteOutcome {
        let started = Instant::now();
        let seq = self.inner.clock.next();
        let body = WriteBody {
            token,
            entries: entries
                .into_iter()
                .map(|(key, value)| WriteEntry { key, value, seq })
                .collect(),
        };
        let path = format!("/kv/{}/write", self.inner.domain);
        let mut rx = self.inner.replicas.post_all::<_, WriteReply>(&path, body);
        let (n, w) = (self.inner.spec.n, self.inner.spec.w);
        let (mut acks, mut refusals) = (0, 0);
        let mut fenced_by: Option<u64> = None;
        let mut errors = Vec::new();
        let outcome = loop {
            let Some((i, reply)) = rx.recv().await else {
                break None;
            };
            self.observe_write(i, &reply);
            match reply {
                Reply::Ok(_) => {
                    acks += 1;
                    if acks >= w {
                        break Some(WriteOutcome::Ok(Version { token, seq }));
                    }
                }
                Reply::Refused {
                    code,
                    current_token,
                    message,
                    ..
                } => {
                    refusals += 1;
                    if code == "fenced" {
                        fenced_by = fenced_by.max(current_token);
                    }
                    errors.push(format!(
                        "{}: {code}: {message}",
                        self.inner.replicas.node(i)
                    ));
                }
                Reply::Failed(e) => errors.push(e),
            }
        };
        if outcome.is_some() {
            // The quorum is reached; the other replicas' answers still tell their floors.
            let me = self.clone();
            tokio::spawn(async move {
                while let Some((i, reply)) = rx.recv().await {
                    me.observe_write(i, &reply);
                }
            });
        }
        let outcome = outcome.unwrap_or_else(|| {
            let reason = format!(
                "{acks} of {n} replicas acked (need {w}): {}",
                errors.join("; ")
            );
            if refusals == n {
                WriteOutcome::Failed { fenced_by, reason }
            } else {
                WriteOutcome::Unknown { fenced_by, reason }
            }
        });
        metrics::histogram!("quorum_write_duration_seconds", "state" => self.inner.state)
            .record(started.elapsed().as_secs_f64());
        outcome
    }

    /// Reads `keys`: the newest version of each among R answers, after repairing the stale
    /// answerers. Late answerers are repaired in the background.
    pub async fn read(&self, keys: &[String]) -> Result<Vec<Option<Record>>, Unavailable> {
        let started = Instant::now();
        let path = format!("/kv/{}/read", self.inner.domain);
        let body = ReadBody {
            keys: keys.to_vec(),
        };
        let mut rx = self.inner.replicas.post_all::<_, ReadReply>(&path, body);
        let mut answers: Vec<(usize, Vec<Option<Record>>)> = Vec::new();
        let mut errors = Vec::new();
        while answers.len() < self.inner.spec.r {
            match rx.recv().await {
                Some((i, Reply::Ok(reply))) if reply.records.len() == keys.len() => {
                    self.observe(i, reply.current_token);
                    answers.push((i, reply.records));
                }
                Some((i, Reply::Ok(_))) => errors.push(format!(
                    "{}: answer has the wrong number of records",
                    self.inner.replicas.node(i)
                )),
                Some((i, Reply::Refused { code, message, .. })) => {
                    errors.push(format!(
                        "{}: {code}: {message}",
                        self.inner.replicas.node(i)
                    ));
                }
                Some((_, Reply::Failed(e))) => errors.push(e),
                None => break,
            }
        }
        let result = if answers.len() < self.inner.spec.r {
            Err(self.unavailable(format!(
                "{} of {} replicas answered a read (need {}): {}",
                answers.len(),
                self.inner.spec.n,
                self.inner.spec.r,
                errors.join("; ")
            )))
        } else {
            let newest = newest_per_key(keys.len(), &answers);
            let repairs = answers
                .iter()
                .map(|(i, recs)| self.repair(*i, stale_records(&newest, recs)));
            futures::future::join_all(repairs).await;
            self.repair_late(rx, newest.clone());
            Ok(newest)
        };
        metrics::histogram!("quorum_read_duration_seconds", "state" => self.inner.state)
            .record(started.elapsed().as_secs_f64());
        result
    }

    /// Reads one key.
    pub async fn read_one(&self, key: &str) -> Result<Option<Record>, Unavailable> {
        Ok(self.read(&[key.to_owned()]).await?.pop().flatten())
    }

    /// Reads one key as `T`; a value of another shape is an error.
    pub async fn read_value<T: DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<T>, Unavailable> {
        match self.read_one(key).await? {
            None => Ok(None),
            Some(rec) => serde_json::from_value(rec.value).map(Some).map_err(|e| {
                self.unavailable(format!("key {key:?} holds an unreadable value: {e}"))
            }),
        }
    }

    /// Writes `(key, value)` pairs serialized as JSON.
    pub async fn write_values<T: Serialize>(
        &self,
        token: u64,
        entries: &[(String, T)],
    ) -> WriteOutcome {
        let mut json = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            match serde_json::to_value(v) {
                Ok(v) => json.push((k.clone(), v)),
                Err(e) => {
                    return WriteOutcome::Failed {
                        fenced_by: None,
                        reason: format!("key {k:?}: cannot serialize: {e}"),
                    }
                }
            }
        }
        self.write(token, json).await
    }

    /// Feeds a token replica `i` reported into the floor.
    fn observe(&self, i: usize, token: u64) {
        self.inner.floor.observe(token, self.inner.replicas.node(i));
    }

    async fn repair(&self, i: usize, stale: Vec<Record>) {
        let path = format!("/kv/{}/repair", self.inner.domain);
        for chunk in stale.chunks(MAX_BATCH_ENTRIES) {
            let body = RepairBody {
                records: chunk.to_vec(),
            };
            if let Reply::Failed(e) | Reply::Refused { message: e, .. } = self
                .inner
                .replicas
                .post::<_, RepairReply>(i, &path, &body)
                .await
            {
                tracing::debug!(replica = self.inner.replicas.node(i), error = %e, "read repair failed");
            }
        }
    }

    fn repair_late(
        &self,
        mut rx: mpsc::Receiver<(usize, Reply<ReadReply>)>,
        newest: Vec<Option<Record>>,
    ) {
        let me = self.clone();
        tokio::spawn(async move {
            while let Some((i, reply)) = rx.recv().await {
                if let Reply::Ok(reply) = reply {
                    me.observe(i, reply.current_token);
                    if reply.records.len() == newest.len() {
                        me.repair(i, stale_records(&newest, &reply.records)).await;
                    }
                }
            }
        });
    }

    /// One page of the records whose keys start with `prefix`, after `after`: the newest
    /// version of each key among the replicas that answered (at least R), repaired in the
    /// background where a replica lacked it. Returns the records and the cursor of the next
    /// page (None at the end).
    pub async fn scan(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Record>, Option<String>), Unavailable> {
        let path = format!("/kv/{}/scan", self.inner.domain);
        let mut query = vec![("prefix", prefix.to_owned()), ("limit", limit.to_string())];
        if let Some(a) = after {
            query.push(("after", a.to_owned()));
        }
        let mut rx = self.inner.replicas.get_all::<ScanReply>(&path, query);
        let (n, r) = (self.inner.spec.n, self.inner.spec.r);
        let mut pages: Vec<(usize, ScanReply)> = Vec::new();
        let mut errors = Vec::new();
        let mut grace_until: Option<tokio::time::Instant> = None;
        while pages.len() + errors.len() < n {
            let next = match grace_until {
                Some(t) => match tokio::time::timeout_at(t, rx.recv()).await {
                    Ok(x) => x,
                    Err(_) => break,
                },
                None => rx.recv().await,
            };
            match next {
                Some((i, Reply::Ok(page))) => {
                    self.observe(i, page.current_token);
                    pages.push((i, page));
                }
                Some((_, Reply::Failed(e) | Reply::Refused { message: e, .. })) => errors.push(e),
                None => break,
            }
            if pages.len() >= r && grace_until.is_none() {
                grace_until = Some(tokio::time::Instant::now() + SCAN_GRACE);
            }
        }
        if pages.len() < r {
            return Err(self.unavailable(format!(
                "{} of {n} replicas answered a scan (need {r}): {}",
                pages.len(),
                errors.join("; ")
            )));
        }
        let (merged, next) = merge_pages(&pages, limit);
        let me = self.clone();
        let missing: Vec<(usize, Vec<Record>)> = pages
            .iter()
            .map(|(i, p)| (*i, missing_from(&merged, &p.items)))
            .filter(|(_, m)| !m.is_empty())
            .collect();
        if !missing.is_empty() {
            tokio::spawn(async move {
                for (i, stale) in missing {
                    me.repair(i, stale).await;
                }
            });
        }
        Ok((merged, next))
    }

    /// Every record under `prefix`, page by page (at most [`MAX_SCAN_PAGES`] pages).
    pub async fn scan_all(&self, prefix: &str, page: usize) -> Result<Vec<Record>, Unavailable> {
        self.scan_all_after(prefix, None, page).await
    }

    /// Every record under `prefix` after the key `start` (all of them when `None`), page by
    /// page (at most [`MAX_SCAN_PAGES`] pages).
    pub async fn scan_all_after(
        &self,
        prefix: &str,
        start: Option<&str>,
        page: usize,
    ) -> Result<Vec<Record>, Unavailable> {
        let mut out = Vec::new();
        let mut after: Option<String> = start.map(str::to_owned);
        for _ in 0..MAX_SCAN_PAGES {
            let (items, next) = self.scan(prefix, after.as_deref(), page).await?;
            out.extend(items);
            match next {
                Some(n) => after = Some(n),
                None => return Ok(out),
            }
        }
        Err(self.unavailable(format!("more than {MAX_SCAN_PAGES} pages under {prefix:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves sequences strictly increase within a process.
    #[test]
    fn seq_clock_increases() {
        let c = SeqClock {
            last: AtomicU64::new(0),
            node_bits: 3,
        };
        let mut last = 0;
        for _ in 0..1000 {
            let s = c.next();
            assert!(s > last);
            last = s;
        }
    }
}
