//! The order workload: concurrent client processes place orders at a set total rate, each with a
//! fresh idempotency key, and poll each acknowledged order to a terminal state. Every request is
//! recorded as an invoke and then its completion, Jepsen style:
//!
//! - `place-order`: ok (202), fail (a definite 4xx refusal) or info (no definite answer: the
//!   order may or may not exist). A process whose placement ended in info is retired and
//!   replaced by a fresh process number (`process + concurrency`).
//! - `read-order`: ok with the order's status, or fail. A read changes nothing, so a read
//!   without an answer is a fail (with the error), not an info, and retires nobody.
//!
//! Placements are paced by one shared ticker: a client busy reading leaves the tick to an idle
//! one, so polling does not lower the placement rate. After the time limit the clients stop
//! placing and finish polling what they hold, for at most [`WorkloadOptions::read_drain`].
//!
//! The stock workload (clients of the inventory service itself) is [`stock`].

pub mod stock;

use std::sync::Arc;
use std::time::{Duration, Instant};

use formats::final_state::{Item, OrderStatus};
use formats::history::values::{OrderRead, PlaceOrder, Placed as PlacedValue, ReadOrder};
use formats::history::{OpType, Process, F};
use formats::Role;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::{watch, Mutex};

use crate::cluster::Cluster;
use crate::history::HistoryWriter;

/// Most acknowledged orders one client polls at a time; beyond it the oldest is abandoned.
pub const MAX_PENDING_READS: usize = 1024;
/// Most reads of one order before the client gives up on seeing it terminal.
pub const MAX_READS_PER_ORDER: u32 = 40;
/// Delay before the first read of an acknowledged order.
const FIRST_READ_DELAY: Duration = Duration::from_millis(100);
/// Longest delay between two reads of one order (the delay doubles up to it).
const MAX_READ_DELAY: Duration = Duration::from_secs(1);

/// Workload settings.
#[derive(Debug, Clone)]
pub struct WorkloadOptions {
    /// Concurrent client processes.
    pub concurrency: usize,
    /// Orders per second across all clients.
    pub rate: f64,
    /// How long to place orders.
    pub time_limit: Duration,
    /// Seed of the clients' choices.
    pub seed: u64,
    /// Per-request timeout.
    pub client_timeout: Duration,
    /// Number of distinct SKUs orders choose from.
    pub skus: usize,
    /// After the time limit, how long clients keep polling orders that are not terminal yet.
    pub read_drain: Duration,
    /// True while a retry storm wants eager clients: an order with no definite answer is sent
    /// again at once with the same key and body, up to [`EAGER_RETRIES_MAX`] times; an
    /// acknowledged order that a read finds not terminal yet is sent again too (an impatient
    /// user pressing "pay" once more), up to [`EAGER_RETRIES_MAX`] times per order.
    pub eager: Option<watch::Receiver<bool>>,
}

/// Resends of one order in eager mode: immediate ones after an info, and impatient ones after
/// a read that found it not terminal, each.
pub const EAGER_RETRIES_MAX: u32 = 3;

/// Counts the progress display and the summary use.
#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    /// Orders acknowledged.
    pub ok: u64,
    /// Orders refused.
    pub fail: u64,
    /// Orders with no definite answer.
    pub info: u64,
    /// Order reads answered.
    pub reads_ok: u64,
    /// Order reads not answered.
    pub reads_fail: u64,
    /// Acknowledged orders given up on before they were seen terminal (read bound reached,
    /// drain over, or too many pending).
    pub reads_abandoned: u64,
}

impl Tally {
    /// Completed client operations.
    pub fn ops(&self) -> u64 {
        self.ok + self.fail + self.info + self.reads_ok + self.reads_fail
    }

    /// Completed client operations that did not end ok.
    pub fn errors(&self) -> u64 {
        self.fail + self.info + self.reads_fail
    }
}

/// How long a workload's pooled connection may sit idle.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(20);

/// What every client of a workload shares: one HTTP client (with the cluster secret when the
/// workload calls routes that are not public), one ticker pacing the whole workload, the
/// deadline, and the role's URL on each node.
pub(crate) struct Setup {
    pub http: reqwest::Client,
    pub ticker: Arc<Mutex<tokio::time::Interval>>,
    pub deadline: Instant,
    pub nodes: Vec<String>,
    pub urls: Vec<String>,
}

impl Setup {
    pub(crate) fn new(
        cluster: &dyn Cluster,
        role: Role,
        with_secret: bool,
        client_timeout: Duration,
        rate: f64,
        time_limit: Duration,
    ) -> anyhow::Result<Self> {
        // Idle pooled connections are dropped well before the roles' keep-alive idle timeout
        // (60 s, docs/contracts.md §1) closes them under a request.
        let mut builder = reqwest::Client::builder()
            .timeout(client_timeout)
            .connect_timeout(client_timeout)
            .pool_idle_timeout(POOL_IDLE_TIMEOUT);
        if with_secret {
            builder = crate::cluster::with_secret(builder, cluster);
        }
        let http = builder.build()?;
        let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let nodes = cluster.nodes();
        let urls = nodes
            .iter()
            .map(|n| cluster.url(n, role))
            .collect::<anyhow::Result<_>>()?;
        Ok(Self {
            http,
            ticker: Arc::new(Mutex::new(ticker)),
            deadline: Instant::now() + time_limit,
            nodes,
            urls,
        })
    }
}

/// Runs the workload until the time limit or until `stop` turns true.
pub async fn run(
    cluster: Arc<dyn Cluster>,
    history: Arc<HistoryWriter>,
    opts: WorkloadOptions,
    stop: watch::Receiver<bool>,
    tally: Arc<std::sync::Mutex<Tally>>,
) -> anyhow::Result<()> {
    let Setup {
        http,
        ticker,
        deadline,
        nodes,
        urls,
    } = Setup::new(
        cluster.as_ref(),
        Role::Order,
        false,
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
            concurrency: opts.concurrency as u64,
            skus: opts.skus.max(1),
            rng: ChaCha8Rng::seed_from_u64(
                opts.seed ^ (worker as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
            ),
            tally: tally.clone(),
            eager: opts.eager.clone(),
        };
        let ticker = ticker.clone();
        let stop = stop.clone();
        let drain_until = deadline + opts.read_drain;
        tasks.push(tokio::spawn(async move {
            client
                .work(worker, ticker, stop, deadline, drain_until)
                .await;
        }));
    }
    for t in tasks {
        t.await?;
    }
    Ok(())
}

/// An acknowledged order the client polls.
#[derive(Debug, Clone)]
struct PendingRead {
    order_id: String,
    node: usize,
    due: Instant,
    delay: Duration,
    reads: u32,
    /// The order as placed, for an impatient resend.
    order: PlaceOrder,
    /// Impatient resends made.
    resends: u32,
}

/// What a placement left behind.
struct Placed {
    /// The outcome was info: the process must retire. Holds the order for a resend.
    retired: Option<PlaceOrder>,
    /// The acknowledged order to poll.
    read: Option<PendingRead>,
}

struct Client {
    http: reqwest::Client,
    history: Arc<HistoryWriter>,
    urls: Vec<String>,
    nodes: Vec<String>,
    concurrency: u64,
    skus: usize,
    rng: ChaCha8Rng,
    tally: Arc<std::sync::Mutex<Tally>>,
    eager: Option<watch::Receiver<bool>>,
}

impl Client {
    fn count(&self, bump: impl FnOnce(&mut Tally)) {
        if let Ok(mut t) = self.tally.lock() {
            bump(&mut t);
        }
    }

    /// The client's life: place on ticks until `deadline`, poll acknowledged orders in between,
    /// then poll what is left until `drain_until`. `stop` ends everything at once.
    async fn work(
        mut self,
        worker: usize,
        ticker: Arc<Mutex<tokio::time::Interval>>,
        mut stop: watch::Receiver<bool>,
        deadline: Instant,
        drain_until: Instant,
    ) {
        let mut process = worker as u64;
        let mut seq = 0u64;
        let mut pending: Vec<PendingRead> = Vec::new();
        let mut placing = true;
        loop {
            let next = pending
                .iter()
                .enumerate()
                .min_by_key(|(_, p)| p.due)
                .map(|(i, p)| (i, p.due));
            if !placing && (next.is_none() || Instant::now() >= drain_until) {
                break;
            }
            let next_due = next.map_or(drain_until, |(_, due)| due);
            tokio::select! {
                _ = stop.changed() => break,
                _ = async { ticker.lock().await.tick().await; }, if placing => {
                    if Instant::now() >= deadline {
                        placing = false;
                        continue;
                    }
                    let mut placed = self.place(process, seq, None).await;
                    let mut resends = 0;
                    while let Some(order) = placed.retired.take() {
                        process += self.concurrency;
                        let eager_now = self.eager.as_ref().is_some_and(|e| *e.borrow());
                        if !eager_now || resends >= EAGER_RETRIES_MAX || *stop.borrow() {
                            break;
                        }
                        resends += 1;
                        placed = self.place(process, seq, Some(order)).await;
                    }
                    seq += 1;
                    if let Some(read) = placed.read {
                        if pending.len() >= MAX_PENDING_READS {
                            pending.remove(0);
                            self.count(|t| t.reads_abandoned += 1);
                        }
                        pending.push(read);
                    }
                }
                _ = tokio::time::sleep_until(next_due.into()), if next.is_some() => {
                    let Some((i, _)) = next else { continue };
                    let mut read = pending.swap_remove(i);
                    if !self.read(process, &read).await {
                        if self.impatient(&mut read, &stop) {
                            let again = self.place(process, seq, Some(read.order.clone())).await;
                            if again.retired.is_some() {
                                process += self.concurrency;
                            }
                        }
                        read.reads += 1;
                        if read.reads >= MAX_READS_PER_ORDER {
                            self.count(|t| t.reads_abandoned += 1);
                        } else {
                            read.delay = (read.delay * 2).min(MAX_READ_DELAY);
                            read.due = Instant::now() + read.delay;
                            pending.push(read);
                        }
                    }
                }
                _ = tokio::time::sleep_until(deadline.into()), if placing => placing = false,
            }
        }
        let left = pending.len() as u64;
        self.count(|t| t.reads_abandoned += left);
    }

    /// In eager mode, whether to send the order `read` polls once more (it was not terminal),
    /// counting the resend.
    fn impatient(&self, read: &mut PendingRead, stop: &watch::Receiver<bool>) -> bool {
        let eager_now = self.eager.as_ref().is_some_and(|e| *e.borrow());
        if !eager_now || read.resends >= EAGER_RETRIES_MAX || *stop.borrow() {
            return false;
        }
        read.resends += 1;
        true
    }

    /// Places one order, or sends `again` (an earlier order's key and body) once more.
    async fn place(&mut self, process: u64, seq: u64, again: Option<PlaceOrder>) -> Placed {
        let i = (process as usize) % self.urls.len();
        let node = self.nodes[i].clone();
        let order = match again {
            Some(order) => order,
            None => {
                let rng = &mut self.rng;
                PlaceOrder {
                    key: format!("k-p{process}-{seq}"),
                    customer: format!("c{}", rng.gen_range(0..100)),
                    items: vec![Item {
                        sku: format!("sku-{}", rng.gen_range(0..self.skus)),
                        qty: rng.gen_range(1..=3),
                    }],
                    amount: rng.gen_range(100..=20_000),
                }
            }
        };
        let key = order.key.clone();
        let p = Process::Client(process);
        self.history.record(
            p,
            OpType::Invoke,
            F::PlaceOrder,
            value(&order),
            Some(node.clone()),
            None,
        );
        let body =
            json!({"customer": order.customer, "items": order.items, "amount": order.amount});
        let sent = self
            .http
            .post(format!("{}/orders", self.urls[i]))
            .header("idempotency-key", &key)
            .json(&body)
            .send()
            .await;
        let mut order_id = None;
        let (op_type, error) = match sent {
            Ok(resp) => {
                let status = resp.status();
                let body: serde_json::Value = resp.json().await.unwrap_or(serde_json::Value::Null);
                if status.as_u16() == 202 {
                    order_id = body
                        .get("order_id")
                        .and_then(|v| v.as_str())
                        .map(str::to_owned);
                    (OpType::Ok, None)
                } else if status.is_client_error() {
                    (OpType::Fail, Some(format!("HTTP {status}: {body}")))
                } else {
                    (OpType::Info, Some(format!("HTTP {status}: {body}")))
                }
            }
            Err(e) => (OpType::Info, Some(error_text(&e))),
        };
        let done = value(&PlacedValue {
            key,
            order_id: order_id.clone(),
        });
        self.count(|t| match op_type {
            OpType::Ok => t.ok += 1,
            OpType::Fail => t.fail += 1,
            _ => t.info += 1,
        });
        self.history
            .record(p, op_type, F::PlaceOrder, done, Some(node), error);
        let read = order_id.map(|order_id| PendingRead {
            order_id,
            node: i,
            due: Instant::now() + FIRST_READ_DELAY,
            delay: FIRST_READ_DELAY,
            reads: 0,
            order: order.clone(),
            resends: 0,
        });
        Placed {
            retired: (op_type == OpType::Info).then_some(order),
            read,
        }
    }

    /// Reads one order from the node that accepted it; returns true once it is terminal (or the
    /// node says it does not exist, which no further read will change).
    async fn read(&mut self, process: u64, read: &PendingRead) -> bool {
        let node = self.nodes[read.node].clone();
        let p = Process::Client(process);
        let asked = value(&ReadOrder {
            order_id: read.order_id.clone(),
        });
        self.history.record(
            p,
            OpType::Invoke,
            F::ReadOrder,
            asked.clone(),
            Some(node.clone()),
            None,
        );
        let url = order_url(&self.urls[read.node], &read.order_id);
        let answer = match url {
            Ok(url) => match self.http.get(url).send().await {
                Ok(resp) => {
                    let code = resp.status();
                    let body: serde_json::Value =
                        resp.json().await.unwrap_or(serde_json::Value::Null);
                    let status = body
                        .get("status")
                        .and_then(|s| OrderStatus::deserialize(s).ok());
                    match status {
                        Some(st) if code.is_success() => Ok(st),
                        _ => Err((code.as_u16() == 404, format!("HTTP {code}: {body}"))),
                    }
                }
                Err(e) => Err((false, error_text(&e))),
            },
            Err(e) => Err((true, e)),
        };
        let (op_type, value, error, done) = match answer {
            Ok(status) => (
                OpType::Ok,
                value(&OrderRead {
                    order_id: read.order_id.clone(),
                    status,
                }),
                None,
                status.is_terminal(),
            ),
            Err((definite, e)) => (OpType::Fail, asked, Some(e), definite),
        };
        self.count(|t| match op_type {
            OpType::Ok => t.reads_ok += 1,
            _ => t.reads_fail += 1,
        });
        self.history
            .record(p, op_type, F::ReadOrder, value, Some(node), error);
        done
    }
}

/// An op value in the history's shape (plain data always serializes).
pub(crate) fn value<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or_else(|e| panic!("history value: {e}"))
}

fn order_url(base: &str, order_id: &str) -> Result<reqwest::Url, String> {
    let mut url = reqwest::Url::parse(base).map_err(|e| format!("{base}: {e}"))?;
    url.path_segments_mut()
        .map_err(|()| format!("{base}: cannot hold a path"))?
        .pop_if_empty()
        .push("orders")
        .push(order_id);
    Ok(url)
}

fn error_text(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connection refused or unreachable".into()
    } else {
        e.to_string()
    }
}
