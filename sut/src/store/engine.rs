//! The replica's storage: records and per-domain fencing/lease state in one redb database.
//!
//! Every mutation goes through one writer thread that takes whatever jobs are queued (up to
//! [`MAX_GROUP_JOBS`]), applies them in one transaction and commits once (redb fsyncs on
//! commit): group commit. A job is answered only after that commit, so an acknowledged write
//! survives SIGKILL. The domain's highest token is stored in the same transaction as the
//! records it admitted, so fencing state and data never disagree after a crash.
//!
//! Lease expiry is kept in memory only; after a restart every persisted lease counts as held
//! for one more full TTL, which errs on the side of refusing a new candidate.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use redb::{Database, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::wire::{
    LeaseBody, LeaseReply, LeaseState, Record, RepairReply, ScanReply, Version, WriteBody,
    WriteReply, DOMAINS,
};

/// Records by `<domain>/<key>`.
const RECORDS: TableDefinition<'static, &'static str, &'static [u8]> =
    TableDefinition::new("records");
/// Fencing and lease state by domain.
const DOMAIN_META: TableDefinition<'static, &'static str, &'static [u8]> =
    TableDefinition::new("domains");

/// Jobs queued for the writer before new ones are refused as overload.
pub const JOB_QUEUE_BOUND: usize = 4096;
/// Jobs applied in one transaction (one fsync).
pub const MAX_GROUP_JOBS: usize = 256;

/// Why the engine could not answer.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The write queue is full.
    #[error("write queue is full ({JOB_QUEUE_BOUND} jobs)")]
    Overloaded,
    /// redb failed; the job was not applied.
    #[error("storage: {0}")]
    Storage(String),
    /// The writer thread is gone.
    #[error("writer thread stopped")]
    Closed,
}

fn storage<E: std::fmt::Display>(e: E) -> EngineError {
    EngineError::Storage(e.to_string())
}

/// Durable per-domain state.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct DomainMeta {
    /// Highest token granted or accepted.
    max_token: u64,
    /// Holder of the last grant (None once released).
    holder: Option<String>,
    /// Token of the last grant.
    holder_token: u64,
    /// TTL of the last grant.
    ttl_ms: u64,
}

#[derive(Debug, Clone, Default)]
struct DomainState {
    meta: DomainMeta,
    expires: Option<Instant>,
}

impl DomainState {
    fn lease_state(&self, domain: &str, now: Instant) -> LeaseState {
        let remaining = self
            .expires
            .filter(|_| self.meta.holder.is_some())
            .map(|e| e.saturating_duration_since(now))
            .unwrap_or_default();
        LeaseState {
            domain: domain.to_owned(),
            max_token: self.meta.max_token,
            holder: self.meta.holder.clone(),
            holder_token: self.meta.holder_token,
            remaining_ms: remaining.as_millis() as u64,
        }
    }

    fn lease_active(&self, now: Instant) -> bool {
        self.meta.holder.is_some() && self.expires.is_some_and(|e| e > now)
    }
}

/// One mutation.
#[derive(Debug)]
pub enum Op {
    /// A fenced write.
    Write(WriteBody),
    /// Read repair: install newer records, no fencing.
    Repair(Vec<Record>),
    /// Grant a lease under a strictly higher token.
    Acquire(LeaseBody),
    /// Extend the holder's lease.
    Renew(LeaseBody),
    /// Give the lease up.
    Release(LeaseBody),
}

/// The answer to an [`Op`].
#[derive(Debug, Clone)]
pub enum Answer {
    /// Write admitted.
    Written(WriteReply),
    /// Write refused: its token is below the domain's highest.
    Fenced {
        /// The domain's highest token.
        current_token: u64,
    },
    /// Repair done.
    Repaired(RepairReply),
    /// Lease decision.
    Lease(LeaseReply),
}

struct Job {
    domain: String,
    op: Op,
    reply: oneshot::Sender<Result<Answer, EngineError>>,
}

/// What the writer logs once a group is committed.
enum Event {
    Accepted(String, String, u64, Version),
    Rejected(String, String, u64, u64),
    Stale(String, String, u64, u64, Version),
    Repaired(String, String, Version),
    Granted(String, String, u64),
}

/// A replica's storage.
#[derive(Clone)]
pub struct Engine {
    db: Arc<Database>,
    jobs: SyncSender<Job>,
    domains: Arc<Mutex<BTreeMap<String, DomainState>>>,
}

fn record_key(domain: &str, key: &str) -> String {
    format!("{domain}/{key}")
}

impl Engine {
    /// Opens (or creates) the database and starts the writer thread. With `fencing` off, stale
    /// writes are admitted and logged instead of refused.
    pub fn open(path: &Path, fencing: bool) -> anyhow::Result<Engine> {
        let db = Arc::new(
            Database::create(path).with_context(|| format!("opening {}", path.display()))?,
        );
        let now = Instant::now();
        let mut domains = BTreeMap::new();
        {
            let txn = db.begin_write()?;
            {
                txn.open_table(RECORDS)?;
                let meta = txn.open_table(DOMAIN_META)?;
                for d in DOMAINS {
                    let m: DomainMeta = match meta.get(*d)? {
                        Some(v) => serde_json::from_slice(v.value())
                            .with_context(|| format!("domain {d}: corrupt state"))?,
                        None => DomainMeta::default(),
                    };
                    let expires = m
                        .holder
                        .as_ref()
                        .map(|_| now + Duration::from_millis(m.ttl_ms));
                    domains.insert((*d).to_owned(), DomainState { meta: m, expires });
                }
            }
            txn.commit()?;
        }
        let domains = Arc::new(Mutex::new(domains));
        let (tx, rx) = sync_channel(JOB_QUEUE_BOUND);
        let writer = Writer {
            db: db.clone(),
            domains: domains.clone(),
            fencing,
        };
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer.run(rx))
            .context("starting the writer thread")?;
        Ok(Engine {
            db,
            jobs: tx,
            domains,
        })
    }

    /// Queues `op` for the writer and waits for its committed answer.
    pub async fn submit(&self, domain: &str, op: Op) -> Result<Answer, EngineError> {
        let (reply, rx) = oneshot::channel();
        let job = Job {
            domain: domain.to_owned(),
            op,
            reply,
        };
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(EngineError::Overloaded),
            Err(TrySendError::Disconnected(_)) => return Err(EngineError::Closed),
        }
        rx.await.map_err(|_| EngineError::Closed)?
    }

    /// Reads `keys` of `domain` (blocking; committed data only).
    pub fn read(&self, domain: &str, keys: &[String]) -> Result<Vec<Option<Record>>, EngineError> {
        let txn = self.db.begin_read().map_err(storage)?;
        let t = txn.open_table(RECORDS).map_err(storage)?;
        keys.iter()
            .map(
                |k| match t.get(record_key(domain, k).as_str()).map_err(storage)? {
                    Some(v) => serde_json::from_slice(v.value()).map(Some).map_err(storage),
                    None => Ok(None),
                },
            )
            .collect()
    }

    /// Up to `limit` records of `domain` whose keys start with `prefix`, strictly after `after`.
    pub fn scan(
        &self,
        domain: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<ScanReply, EngineError> {
        let txn = self.db.begin_read().map_err(storage)?;
        let t = txn.open_table(RECORDS).map_err(storage)?;
        let full_prefix = record_key(domain, prefix);
        let start = match after {
            Some(a) if a >= prefix => std::ops::Bound::Excluded(record_key(domain, a)),
            _ => std::ops::Bound::Included(full_prefix.clone()),
        };
        let range = t
            .range::<&str>((
                start.as_ref().map(String::as_str),
                std::ops::Bound::Unbounded,
            ))
            .map_err(storage)?;
        let mut items = Vec::new();
        for entry in range {
            let (k, v) = entry.map_err(storage)?;
            if !k.value().starts_with(&full_prefix) {
                break;
            }
            items.push(serde_json::from_slice::<Record>(v.value()).map_err(storage)?);
            if items.len() >= limit {
                break;
            }
        }
        let next = if items.len() >= limit {
            items.last().map(|r| r.key.clone())
        } else {
            None
        };
        Ok(ScanReply { items, next })
    }

    /// This replica's view of `domain`'s lease.
    pub fn lease_state(&self, domain: &str) -> LeaseState {
        let now = Instant::now();
        self.domains
            .lock()
            .map(|d| {
                d.get(domain)
                    .map(|s| s.lease_state(domain, now))
                    .unwrap_or_default()
            })
            .unwrap_or_default()
    }
}

struct Writer {
    db: Arc<Database>,
    domains: Arc<Mutex<BTreeMap<String, DomainState>>>,
    fencing: bool,
}

impl Writer {
    fn run(self, rx: Receiver<Job>) {
        while let Ok(first) = rx.recv() {
            let mut jobs = vec![first];
            while jobs.len() < MAX_GROUP_JOBS {
                match rx.try_recv() {
                    Ok(j) => jobs.push(j),
                    Err(_) => break,
                }
            }
            self.group(jobs);
        }
    }

    /// Applies `jobs` in one transaction, commits once, then answers each and logs.
    fn group(&self, jobs: Vec<Job>) {
        let mut domains = match self.domains.lock() {
            Ok(d) => d.clone(),
            Err(_) => return answer_all(jobs, "domain state lock poisoned"),
        };
        let mut events = Vec::new();
        let mut answers = Vec::with_capacity(jobs.len());
        let started = Instant::now();
        let applied = (|| -> Result<bool, EngineError> {
            let txn = self.db.begin_write().map_err(storage)?;
            let mut dirty = false;
            {
                let mut records = txn.open_table(RECORDS).map_err(storage)?;
                let mut meta = txn.open_table(DOMAIN_META).map_err(storage)?;
                let now = Instant::now();
                for job in &jobs {
                    let Some(state) = domains.get_mut(&job.domain) else {
                        answers.push(Err(EngineError::Storage(format!(
                            "unknown domain {}",
                            job.domain
                        ))));
                        continue;
                    };
                    let mut ctx = Apply {
                        domain: &job.domain,
                        state,
                        records: &mut records,
                        events: &mut events,
                        fencing: self.fencing,
                        now,
                        meta_dirty: false,
                    };
                    let answer = ctx.apply(&job.op)?;
                    if ctx.meta_dirty {
                        let bytes = serde_json::to_vec(&ctx.state.meta).map_err(storage)?;
                        meta.insert(job.domain.as_str(), bytes.as_slice())
                            .map_err(storage)?;
                    }
                    dirty |= ctx.meta_dirty || answer.1;
                    answers.push(Ok(answer.0));
                }
            }
            if dirty {
                txn.commit().map_err(storage)?;
            } else {
                txn.abort().map_err(storage)?;
            }
            Ok(dirty)
        })();
        metrics::counter!("store_jobs_total").increment(jobs.len() as u64);
        if matches!(applied, Ok(true)) {
            metrics::counter!("store_group_commits_total").increment(1);
            metrics::histogram!("store_commit_duration_seconds")
                .record(started.elapsed().as_secs_f64());
        }
        match applied {
            Ok(_) => {
                if let Ok(mut shared) = self.domains.lock() {
                    *shared = domains;
                }
                emit(events);
                for (job, answer) in jobs.into_iter().zip(answers) {
                    let _ = job.reply.send(answer);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, jobs = jobs.len(), "group commit failed");
                answer_all(jobs, &e.to_string());
            }
        }
    }
}

fn answer_all(jobs: Vec<Job>, why: &str) {
    for job in jobs {
        let _ = job.reply.send(Err(EngineError::Storage(why.to_owned())));
    }
}

fn emit(events: Vec<Event>) {
    for e in events {
        match e {
            Event::Accepted(domain, key, token, version) => {
                tracing::info!(%domain, %key, token, version = %version, "write accepted");
            }
            Event::Rejected(domain, key, rejected_token, current_token) => {
                metrics::counter!("fencing_rejected_writes_total", "domain" => domain.clone())
                    .increment(1);
                tracing::warn!(%domain, %key, rejected_token, current_token, "fencing rejected write");
            }
            Event::Stale(domain, key, token, current_token, version) => {
                tracing::warn!(%domain, %key, token, current_token, "stale write accepted (fencing disabled)");
                tracing::info!(%domain, %key, token, version = %version, "write accepted");
            }
            Event::Repaired(domain, key, version) => {
                tracing::info!(%domain, %key, version = %version, "read repair installed");
            }
            Event::Granted(domain, holder, token) => {
                tracing::info!(%domain, %holder, token, "lease granted");
            }
        }
    }
}

/// One job against the group's transaction.
struct Apply<'a, 't> {
    domain: &'a str,
    state: &'a mut DomainState,
    records: &'a mut redb::Table<'t, &'static str, &'static [u8]>,
    events: &'a mut Vec<Event>,
    fencing: bool,
    now: Instant,
    meta_dirty: bool,
}

impl Apply<'_, '_> {
    /// The answer and whether records changed.
    fn apply(&mut self, op: &Op) -> Result<(Answer, bool), EngineError> {
        match op {
            Op::Write(body) => self.write(body),
            Op::Repair(records) => self.repair(records),
            Op::Acquire(b) => Ok((self.acquire(b), false)),
            Op::Renew(b) => Ok((self.renew(b), false)),
            Op::Release(b) => Ok((self.release(b), false)),
        }
    }

    fn stored(&self, key: &str) -> Result<Option<Record>, EngineError> {
        match self
            .records
            .get(record_key(self.domain, key).as_str())
            .map_err(storage)?
        {
            Some(v) => serde_json::from_slice(v.value()).map(Some).map_err(storage),
            None => Ok(None),
        }
    }

    fn put(&mut self, rec: &Record) -> Result<(), EngineError> {
        let bytes = serde_json::to_vec(rec).map_err(storage)?;
        self.records
            .insert(record_key(self.domain, &rec.key).as_str(), bytes.as_slice())
            .map_err(storage)?;
        Ok(())
    }

    fn write(&mut self, body: &WriteBody) -> Result<(Answer, bool), EngineError> {
        let current = self.state.meta.max_token;
        let stale = body.token < current;
        if stale && self.fencing {
            for e in &body.entries {
                self.events.push(Event::Rejected(
                    self.domain.to_owned(),
                    e.key.clone(),
                    body.token,
                    current,
                ));
            }
            return Ok((
                Answer::Fenced {
                    current_token: current,
                },
                false,
            ));
        }
        if body.token > current {
            self.state.meta.max_token = body.token;
            self.meta_dirty = true;
        }
        let mut applied = Vec::with_capacity(body.entries.len());
        for e in &body.entries {
            let version = Version {
                token: body.token,
                seq: e.seq,
            };
            let newer = self.stored(&e.key)?.is_none_or(|old| old.version < version);
            if newer {
                self.put(&Record {
                    key: e.key.clone(),
                    domain: self.domain.to_owned(),
                    token: body.token,
                    version,
                    value: e.value.clone(),
                })?;
                let (d, k) = (self.domain.to_owned(), e.key.clone());
                self.events.push(if stale {
                    Event::Stale(d, k, body.token, current, version)
                } else {
                    Event::Accepted(d, k, body.token, version)
                });
            }
            applied.push(newer);
        }
        let any = applied.iter().any(|a| *a);
        let reply = WriteReply {
            applied,
            current_token: self.state.meta.max_token,
        };
        Ok((Answer::Written(reply), any))
    }

    fn repair(&mut self, records: &[Record]) -> Result<(Answer, bool), EngineError> {
        let mut installed = 0;
        for rec in records {
            let newer = self
                .stored(&rec.key)?
                .is_none_or(|old| old.version < rec.version);
            if newer {
                self.put(rec)?;
                installed += 1;
                self.events.push(Event::Repaired(
                    self.domain.to_owned(),
                    rec.key.clone(),
                    rec.version,
                ));
            }
        }
        Ok((Answer::Repaired(RepairReply { installed }), installed > 0))
    }

    fn reply(&self, granted: bool) -> Answer {
        Answer::Lease(LeaseReply {
            granted,
            state: self.state.lease_state(self.domain, self.now),
        })
    }

    /// Grants iff the token is above every token granted or accepted here and the current
    /// lease has expired or is the candidate's own. A grant is a promise: writes below the
    /// token are refused from now on.
    fn acquire(&mut self, b: &LeaseBody) -> Answer {
        let own = self.state.meta.holder.as_deref() == Some(b.holder.as_str());
        let free = !self.state.lease_active(self.now) || own;
        if b.token <= self.state.meta.max_token || !free {
            return self.reply(false);
        }
        self.state.meta = DomainMeta {
            max_token: b.token,
            holder: Some(b.holder.clone()),
            holder_token: b.token,
            ttl_ms: b.ttl_ms,
        };
        self.state.expires = Some(self.now + Duration::from_millis(b.ttl_ms));
        self.meta_dirty = true;
        self.events.push(Event::Granted(
            self.domain.to_owned(),
            b.holder.clone(),
            b.token,
        ));
        self.reply(true)
    }

    /// Extends the lease iff the holder still holds it under the same token and no higher
    /// token has been promised since.
    fn renew(&mut self, b: &LeaseBody) -> Answer {
        let m = &self.state.meta;
        let ok = m.holder.as_deref() == Some(b.holder.as_str())
            && m.holder_token == b.token
            && m.max_token == b.token;
        if ok {
            self.state.expires = Some(self.now + Duration::from_millis(b.ttl_ms));
        }
        self.reply(ok)
    }

    /// Ends the holder's lease early (its token stays promised).
    fn release(&mut self, b: &LeaseBody) -> Answer {
        let m = &self.state.meta;
        let ok = m.holder.as_deref() == Some(b.holder.as_str()) && m.holder_token == b.token;
        if ok {
            self.state.meta.holder = None;
            self.state.expires = None;
            self.meta_dirty = true;
        }
        self.reply(ok)
    }
}
