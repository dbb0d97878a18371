//! The stock workload: concurrent client processes call the inventory service's client API
//! directly on a few contended SKUs, at a set total rate, and record each call as an invoke and
//! its completion (contract §6), Jepsen style:
//!
//! - `reserve` `{key, sku, qty}`: ok (201), fail (422 `insufficient_stock`: the service read
//!   the SKU, found fewer units than asked, and stored that refusal under the key before
//!   answering — so the fail is an observation that stock was short, which is what the
//!   checker's stock model makes of it), or info (a timeout, a 5xx, or any other answer: the
//!   reserve may or may not have happened).
//! - `release` `{key, sku, qty}`: ok (201), fail (a 4xx: nothing changed), or info (timeout,
//!   5xx). A client releases only units it reserved, so stock stays within its initial amount.
//! - `read-stock` `{sku}`: ok with `{sku, available}`, or fail. A read changes nothing, so a
//!   read without an answer is a fail and retires nobody.
//!
//! A process whose reserve or release ended in info is retired and replaced by a fresh process
//! number (`process + concurrency`), as in the order workload. Each client sends its successive
//! operations to successive nodes, so that where nodes disagree (eventual mode, a partition) a
//! client's own operations see it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use formats::history::values::{ReadStock, Refusal, StockChange};
use formats::history::{OpType, Process, F};
use formats::Role;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::{watch, Mutex};

use crate::cluster::Cluster;
use crate::history::HistoryWriter;

/// The role the stock clients call.
pub const ROLE: Role = Role::Inventory;
/// Most reservations one client holds; beyond it the client releases before reserving again.
pub const MAX_HELD: usize = 4;
/// Units one reserve asks for: 1 up to this.
pub const MAX_QTY: i64 = 2;
/// Share of operations that read a SKU's stock.
pub const READ_SHARE: f64 = 0.25;
/// Share of operations that release a held reservation (when the client holds one).
pub const RELEASE_SHARE: f64 = 0.3;
/// The refusal that means "not enough stock" (docs/contracts.md §2).
pub const INSUFFICIENT_STOCK: &str = "insufficient_stock";

/// Stock workload settings.
#[derive(Debug, Clone)]
pub struct StockOptions {
    /// Concurrent client processes.
    pub concurrency: usize,
    /// Operations per second across all clients.
    pub rate: f64,
    /// How long to run.
    pub time_limit: Duration,
    /// Seed of the clients' choices.
    pub seed: u64,
    /// Per-request timeout.
    pub client_timeout: Duration,
    /// The contended SKUs.
    pub skus: Vec<String>,
    /// Process numbers start here (apart from the order clients' in a mixed run).
    pub process_base: u64,
}

/// Counts the progress display and the summary use.
#[derive(Debug, Default, Clone, Copy)]
pub struct StockTally {
    /// Reserves acknowledged.
    pub reserve_ok: u64,
    /// Reserves refused for insufficient stock.
    pub reserve_fail: u64,
    /// Releases acknowledged.
    pub release_ok: u64,
    /// Releases refused.
    pub release_fail: u64,
    /// Reserves and releases without a definite answer.
    pub info: u64,
    /// Stock reads answered.
    pub reads_ok: u64,
    /// Stock reads not answered.
    pub reads_fail: u64,
}

impl StockTally {
    /// Completed client operations.
    pub fn ops(&self) -> u64 {
        self.reserve_ok
            + self.reserve_fail
            + self.release_ok
            + self.release_fail
            + self.info
            + self.reads_ok
            + self.reads_fail
    }

    /// Completed operations that were neither ok nor a definite refusal for lack of stock.
    pub fn errors(&self) -> u64 {
        self.release_fail + self.info + self.reads_fail
    }
}

/// Longest wait for the inventory to have a leader before the workload starts.
pub const LEADER_WAIT: Duration = Duration::from_secs(15);
/// Pause between two looks at the inventory's leader.
const LEADER_POLL: Duration = Duration::from_millis(100);

/// Waits until the inventory answers `GET /admin/leader` with a known leader (linearizable
/// mode) or with 404 (eventual mode has none), so that the workload does not start against an
/// election. Returns the leader, if there is one; gives up after `timeout` with an error.
pub async fn wait_until_ready(
    cluster: &dyn Cluster,
    timeout: Duration,
) -> anyhow::Result<Option<String>> {
    let builder = reqwest::Client::builder().timeout(LEADER_POLL * 10);
    let http = crate::cluster::with_secret(builder, cluster).build()?;
    let nodes = cluster.nodes();
    let first = nodes.first().ok_or_else(|| anyhow::anyhow!("no nodes"))?;
    let url = format!("{}/admin/leader", cluster.url(first, ROLE)?);
    let deadline = Instant::now() + timeout;
    let mut last = String::from("no answer yet");
    while Instant::now() < deadline {
        match http.get(&url).send().await {
            Ok(resp) if resp.status().as_u16() == 404 => return Ok(None),
            Ok(resp) => {
                let body = resp.json::<Value>().await.unwrap_or(Value::Null);
                if let Some(leader) = body.get("leader").and_then(Value::as_str) {
                    return Ok(Some(leader.to_owned()));
                }
                last = format!("{body}");
            }
            Err(e) => last = super::error_text(&e),
        }
        tokio::time::sleep(LEADER_POLL).await;
    }
    anyhow::bail!("{url}: no inventory leader after {timeout:?} ({last})")
}

/// Runs the stock workload until the time limit or until `stop` turns true.
pub async fn run(
    cluster: Arc<dyn Cluster>,
    history: Arc<HistoryWriter>,
    opts: StockOptions,
    stop: watch::Receiver<bool>,
    tally: Arc<std::sync::Mutex<StockTally>>,
) -> anyhow::Result<()> {
    anyhow::ensure!(!opts.skus.is_empty(), "the stock workload needs SKUs");
    let super::Setup {
        http,
        ticker,
        deadline,
        nodes,
        urls,
    } = super::Setup::new(
        cluster.as_ref(),
        ROLE,
        true,
        opts.client_timeout,
        opts.rate,
        opts.time_limit,
    )?;
    let mut tasks = Vec::new();
    for worker in 0..opts.concurrency {
        let client = Client {
            http: http.clone(),
            history: history.clone(),
            urls: urls.clone(),
            nodes: nodes.clone(),
            skus: opts.skus.clone(),
            concurrency: opts.concurrency as u64,
            process: opts.process_base + worker as u64,
            worker,
            seq: 0,
            held: Vec::new(),
            rng: ChaCha8Rng::seed_from_u64(
                opts.seed ^ 0x73_746f_636b ^ (worker as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
            ),
            tally: tally.clone(),
        };
        let (ticker, stop) = (ticker.clone(), stop.clone());
        tasks.push(tokio::spawn(client.work(ticker, stop, deadline)));
    }
    for t in tasks {
        t.await?;
    }
    Ok(())
}

/// One call's request.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Call {
    Reserve { sku: String, qty: i64 },
    Release { sku: String, qty: i64 },
    Read { sku: String },
}

/// How a call ended, as the history records it.
struct Completion {
    op_type: OpType,
    value: Value,
    error: Option<String>,
}

struct Client {
    http: reqwest::Client,
    history: Arc<HistoryWriter>,
    urls: Vec<String>,
    nodes: Vec<String>,
    skus: Vec<String>,
    concurrency: u64,
    process: u64,
    worker: usize,
    seq: u64,
    /// Reservations this client made and has not released: (SKU, units).
    held: Vec<(String, i64)>,
    rng: ChaCha8Rng,
    tally: Arc<std::sync::Mutex<StockTally>>,
}

impl Client {
    /// One operation per tick until `deadline`; `stop` ends at once.
    async fn work(
        mut self,
        ticker: Arc<Mutex<tokio::time::Interval>>,
        mut stop: watch::Receiver<bool>,
        deadline: Instant,
    ) {
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                _ = tokio::time::sleep_until(deadline.into()) => break,
                _ = async { ticker.lock().await.tick().await; } => {
                    if Instant::now() >= deadline || *stop.borrow() {
                        break;
                    }
                    let call = self.choose();
                    self.call(call).await;
                }
            }
        }
    }

    /// The next call: a read, a release of a held reservation, or a reserve.
    fn choose(&mut self) -> Call {
        let roll: f64 = self.rng.gen();
        let sku = self.skus.choose(&mut self.rng).cloned().unwrap_or_default();
        if roll < READ_SHARE {
            return Call::Read { sku };
        }
        let release = roll < READ_SHARE + RELEASE_SHARE || self.held.len() >= MAX_HELD;
        if release && !self.held.is_empty() {
            let i = self.rng.gen_range(0..self.held.len());
            let (sku, qty) = self.held.swap_remove(i);
            return Call::Release { sku, qty };
        }
        Call::Reserve {
            sku,
            qty: self.rng.gen_range(1..=MAX_QTY),
        }
    }

    /// Makes one call on the next node and records it.
    async fn call(&mut self, call: Call) {
        let i = (self.worker + self.seq as usize) % self.urls.len();
        let node = self.nodes[i].clone();
        let key = format!("st-p{}-{}", self.process, self.seq);
        self.seq += 1;
        let p = Process::Client(self.process);
        let change = |sku: &str, qty: i64| {
            super::value(&StockChange {
                key: key.clone(),
                sku: sku.to_owned(),
                qty,
                reservation: None,
                refused: None,
            })
        };
        let (f_name, invoke) = match &call {
            Call::Reserve { sku, qty } => (F::Reserve, change(sku, *qty)),
            Call::Release { sku, qty } => (F::Release, change(sku, *qty)),
            Call::Read { sku } => (F::ReadStock, super::value(&ReadStock { sku: sku.clone() })),
        };
        self.history.record(
            p,
            OpType::Invoke,
            f_name,
            invoke.clone(),
            Some(node.clone()),
            None,
        );
        let base = &self.urls[i];
        let sent = match &call {
            Call::Reserve { sku, qty } | Call::Release { sku, qty } => {
                let path = if f_name == F::Reserve {
                    "reserve"
                } else {
                    "release"
                };
                self.http
                    .post(format!("{base}/{path}"))
                    .header("idempotency-key", &key)
                    .json(&json!({"sku": sku, "qty": qty}))
                    .send()
                    .await
            }
            Call::Read { sku } => self.http.get(format!("{base}/stock/{sku}")).send().await,
        };
        let answer = match sent {
            Ok(resp) => {
                let code = resp.status().as_u16();
                let body = resp.json::<Value>().await.unwrap_or(Value::Null);
                Ok((code, body))
            }
            Err(e) => Err(super::error_text(&e)),
        };
        let done = complete(&call, invoke, answer);
        self.bookkeep(&call, done.op_type);
        if done.op_type == OpType::Info {
            self.process += self.concurrency;
        }
        self.history
            .record(p, done.op_type, f_name, done.value, Some(node), done.error);
    }

    /// Counts the outcome and keeps the held reservations up to date.
    fn bookkeep(&mut self, call: &Call, op_type: OpType) {
        if let (Call::Reserve { sku, qty }, OpType::Ok) = (call, op_type) {
            self.held.push((sku.clone(), *qty));
        }
        if let (Call::Release { sku, qty }, OpType::Fail) = (call, op_type) {
            // Refused: nothing changed, the units are still ours to release.
            self.held.push((sku.clone(), *qty));
        }
        if let Ok(mut t) = self.tally.lock() {
            match (call, op_type) {
                (_, OpType::Info) => t.info += 1,
                (Call::Reserve { .. }, OpType::Ok) => t.reserve_ok += 1,
                (Call::Reserve { .. }, _) => t.reserve_fail += 1,
                (Call::Release { .. }, OpType::Ok) => t.release_ok += 1,
                (Call::Release { .. }, _) => t.release_fail += 1,
                (Call::Read { .. }, OpType::Ok) => t.reads_ok += 1,
                (Call::Read { .. }, _) => t.reads_fail += 1,
            }
        }
    }
}

/// Error codes of a 503 that the inventory sends only when nothing was written (contract §2):
/// no leader or a fenced write that every replica refused, and a store read without a quorum.
pub const NOTHING_HAPPENED: [&str; 2] = ["not_leader", "store_unavailable"];

/// True for an answer that says definitely nothing happened.
fn nothing_happened(code: u16, body: &Value) -> bool {
    code == 503
        && body
            .get("error")
            .and_then(Value::as_str)
            .is_some_and(|e| NOTHING_HAPPENED.contains(&e))
}

/// A reserve's value marked as refused for unavailability, not for lack of stock.
fn with_refused(invoke: Value) -> Value {
    match StockChange::deserialize(&invoke) {
        Ok(mut change) => {
            change.refused = Some(Refusal::Unavailable);
            super::value(&change)
        }
        Err(_) => invoke,
    }
}

/// The completion of `call` (invoked with `invoke`) for the service's answer: a status code and
/// body, or the transport error.
fn complete(call: &Call, invoke: Value, answer: Result<(u16, Value), String>) -> Completion {
    let (code, body) = match answer {
        Ok(a) => a,
        Err(error) => {
            // No answer: a write may have happened; a read changed nothing.
            let op_type = match call {
                Call::Read { .. } => OpType::Fail,
                _ => OpType::Info,
            };
            return Completion {
                op_type,
                value: invoke,
                error: Some(error),
            };
        }
    };
    let error = Some(format!("HTTP {code}: {body}"));
    match call {
        Call::Read { sku } => match body.get("available").and_then(Value::as_i64) {
            Some(available) if code == 200 => Completion {
                op_type: OpType::Ok,
                value: json!({"sku": sku, "available": available}),
                error: None,
            },
            _ => Completion {
                op_type: OpType::Fail,
                value: invoke,
                error,
            },
        },
        _ if matches!(code, 200 | 201) => Completion {
            op_type: OpType::Ok,
            value: invoke,
            error: None,
        },
        Call::Reserve { .. }
            if code == 422
                && body.get("error").and_then(Value::as_str) == Some(INSUFFICIENT_STOCK) =>
        {
            Completion {
                op_type: OpType::Fail,
                value: invoke,
                error,
            }
        }
        // Refused before anything was written: nothing happened and nothing was observed.
        Call::Reserve { .. } if nothing_happened(code, &body) => Completion {
            op_type: OpType::Fail,
            value: with_refused(invoke),
            error,
        },
        // Any other refusal of a reserve is not an answer the stock model knows (this client
        // never provokes one: fresh keys, known SKUs, qty of at least 1). Info claims nothing
        // about it, so it can never make a valid history look invalid.
        Call::Reserve { .. } => Completion {
            op_type: OpType::Info,
            value: invoke,
            error,
        },
        Call::Release { .. }
            if ((400..500).contains(&code) && code != 409) || nothing_happened(code, &body) =>
        {
            Completion {
                op_type: OpType::Fail,
                value: invoke,
                error,
            }
        }
        Call::Release { .. } => Completion {
            op_type: OpType::Info,
            value: invoke,
            error,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reserve() -> Call {
        Call::Reserve {
            sku: "stock-0".into(),
            qty: 2,
        }
    }

    /// Proves the Jepsen reading of the inventory's answers: 201 is ok, a 422
    /// `insufficient_stock` is a fail, but any other 422 and every 5xx or timeout leave the
    /// reserve open (info); a release's 4xx is a fail (nothing changed) but a 409 (in flight)
    /// is no answer; a read is ok only with `available`, and otherwise fails without retiring.
    #[test]
    fn answers_map_to_jepsen_outcomes() {
        let inv = json!({"key": "k", "sku": "stock-0", "qty": 2});
        let kind = |call: &Call, answer: Result<(u16, Value), String>| {
            complete(call, inv.clone(), answer).op_type
        };
        let short = json!({"error": "insufficient_stock", "available": 1});
        assert_eq!(kind(&reserve(), Ok((201, json!({})))), OpType::Ok);
        assert_eq!(kind(&reserve(), Ok((422, short))), OpType::Fail);
        let reused = json!({"error": "idempotency_key_reused"});
        assert_eq!(kind(&reserve(), Ok((422, reused))), OpType::Info);
        assert_eq!(kind(&reserve(), Ok((503, json!({})))), OpType::Info);
        for code in ["not_leader", "store_unavailable"] {
            let c = complete(&reserve(), inv.clone(), Ok((503, json!({"error": code}))));
            assert_eq!(c.op_type, OpType::Fail, "{code}");
            assert_eq!(c.value["refused"], "unavailable", "{code}");
        }
        let unknown = json!({"error": "outcome_unknown"});
        assert_eq!(kind(&reserve(), Ok((503, unknown.clone()))), OpType::Info);
        assert_eq!(
            kind(
                &reserve(),
                Ok((502, json!({"error": "leader_unreachable"})))
            ),
            OpType::Info
        );
        assert_eq!(kind(&reserve(), Err("timeout".into())), OpType::Info);
        let release = Call::Release {
            sku: "stock-0".into(),
            qty: 1,
        };
        assert_eq!(kind(&release, Ok((201, json!({})))), OpType::Ok);
        assert_eq!(kind(&release, Ok((422, json!({})))), OpType::Fail);
        assert_eq!(kind(&release, Ok((409, json!({})))), OpType::Info);
        assert_eq!(kind(&release, Ok((502, json!({})))), OpType::Info);
        assert_eq!(
            kind(&release, Ok((503, json!({"error": "not_leader"})))),
            OpType::Fail
        );
        assert_eq!(kind(&release, Ok((503, unknown))), OpType::Info);
        let read = Call::Read {
            sku: "stock-0".into(),
        };
        let c = complete(&read, inv.clone(), Ok((200, json!({"available": 3}))));
        assert_eq!(
            (c.op_type, c.value),
            (OpType::Ok, json!({"sku": "stock-0", "available": 3}))
        );
        assert_eq!(kind(&read, Ok((503, json!({})))), OpType::Fail);
        assert_eq!(kind(&read, Err("timeout".into())), OpType::Fail);
    }
}
