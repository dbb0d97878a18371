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
//!
//! A domain's highest token (its fencing floor) never decreases and never exceeds
//! [`MAX_TOKEN`]: both are asserted on every group. One refused write is one
//! `fencing rejected write` line and one count of `fencing_rejected_writes_total`, however
//! many keys it carried.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use redb::{Database, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::apply::{emit, Apply};
pub use super::apply::{Answer, Op};
use super::wire::{LeaseState, Record, ScanReply, DOMAINS, MAX_TOKEN};

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

pub(super) fn storage<E: std::fmt::Display>(e: E) -> EngineError {
    EngineError::Storage(e.to_string())
}

/// Durable per-domain state.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct DomainMeta {
    /// Highest token granted or accepted.
    pub(super) max_token: u64,
    /// Holder of the last grant (None once released).
    pub(super) holder: Option<String>,
    /// Token of the last grant.
    pub(super) holder_token: u64,
    /// TTL of the last grant.
    pub(super) ttl_ms: u64,
}

/// A domain's durable state and, in memory only, when its lease expires.
#[derive(Debug, Clone, Default)]
pub(super) struct DomainState {
    pub(super) meta: DomainMeta,
    pub(super) expires: Option<Instant>,
}

impl DomainState {
    pub(super) fn lease_state(&self, domain: &str, now: Instant) -> LeaseState {
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

    pub(super) fn lease_active(&self, now: Instant) -> bool {
        self.meta.holder.is_some() && self.expires.is_some_and(|e| e > now)
    }
}

struct Job {
    domain: String,
    op: Op,
    reply: oneshot::Sender<Result<Answer, EngineError>>,
}

/// A replica's storage.
#[derive(Clone)]
pub struct Engine {
    db: Arc<Database>,
    jobs: SyncSender<Job>,
    domains: Arc<Mutex<BTreeMap<String, DomainState>>>,
}

/// Memory redb may use to cache pages. Its default, 1 GiB, is what a replica's resident memory
/// grows towards as its database grows (measured: 28 MB at minute 1 of the soak, 70 MB at
/// minute 7 and rising, docs/soak.md); the operating system caches the file besides.
pub const CACHE_BYTES: usize = 16 * 1024 * 1024;

pub(super) fn record_key(domain: &str, key: &str) -> String {
    format!("{domain}/{key}")
}

impl Engine {
    /// Opens (or creates) the database and starts the writer thread. With `fencing` off, stale
    /// writes are admitted and logged instead of refused.
    pub fn open(path: &Path, fencing: bool) -> anyhow::Result<Engine> {
        let db = Arc::new(
            redb::Builder::new()
                .set_cache_size(CACHE_BYTES)
                .create(path)
                .with_context(|| format!("opening {}", path.display()))?,
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
                    if m.max_token > MAX_TOKEN {
                        anyhow::bail!(
                            "domain {d}: stored token {} is above the maximum {MAX_TOKEN}",
                            m.max_token
                        );
                    }
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
        Ok(ScanReply {
            items,
            next,
            current_token: self.floor(domain),
        })
    }

    /// The highest token this replica has granted or accepted in `domain` (its fencing floor).
    pub fn floor(&self, domain: &str) -> u64 {
        self.domains
            .lock()
            .map(|d| d.get(domain).map_or(0, |s| s.meta.max_token))
            .unwrap_or(0)
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
        let floors_before: Vec<u64> = domains.values().map(|s| s.meta.max_token).collect();
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
        for (state, before) in domains.values().zip(floors_before) {
            let after = state.meta.max_token;
            assert!(
                after >= before,
                "a domain's token went down: {before} -> {after}"
            );
            assert!(
                after <= MAX_TOKEN,
                "a domain's token {after} is above {MAX_TOKEN}"
            );
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
