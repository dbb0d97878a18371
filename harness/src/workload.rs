//! The order workload: concurrent client processes place orders at a set total rate, each with a
//! fresh idempotency key. Every request is recorded as an invoke and then ok (202), fail (a
//! definite 4xx refusal) or info (no definite answer: the order may or may not exist). A process
//! whose operation ended in info is retired and replaced by a fresh process number, Jepsen style.

use std::sync::Arc;
use std::time::{Duration, Instant};

use checker::history::{f, OpType, Process};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;
use tokio::sync::{watch, Mutex};

use crate::cluster::Cluster;
use crate::history::HistoryWriter;

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
    /// True while a retry storm wants eager clients: an order with no definite answer is sent
    /// again at once with the same key and body, up to [`EAGER_RETRIES_MAX`] times.
    pub eager: Option<watch::Receiver<bool>>,
}

/// Immediate resends of one order in eager mode.
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
}

/// Runs the workload until the time limit or until `stop` turns true.
pub async fn run(
    cluster: Arc<dyn Cluster>,
    history: Arc<HistoryWriter>,
    opts: WorkloadOptions,
    stop: watch::Receiver<bool>,
    tally: Arc<std::sync::Mutex<Tally>>,
) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .timeout(opts.client_timeout)
        .connect_timeout(opts.client_timeout)
        .build()?;
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / opts.rate));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let ticker = Arc::new(Mutex::new(ticker));
    let deadline = Instant::now() + opts.time_limit;
    let nodes = cluster.nodes();
    let urls: Vec<String> = nodes
        .iter()
        .map(|n| cluster.url(n, "order"))
        .collect::<anyhow::Result<_>>()?;
    let mut tasks = Vec::new();
    for worker in 0..opts.concurrency {
        let mut client = Client {
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
        };
        let ticker = ticker.clone();
        let mut stop = stop.clone();
        let eager = opts.eager.clone();
        tasks.push(tokio::spawn(async move {
            let mut process = worker as u64;
            let mut seq = 0u64;
            loop {
                tokio::select! {
                    _ = async { ticker.lock().await.tick().await; } => {}
                    _ = stop.changed() => break,
                }
                if Instant::now() >= deadline || *stop.borrow() {
                    break;
                }
                let mut unanswered = client.place(process, seq, None).await;
                let mut resends = 0;
                while let Some(order) = unanswered {
                    process += client.concurrency;
                    let eager_now = eager.as_ref().is_some_and(|e| *e.borrow());
                    if !eager_now || resends >= EAGER_RETRIES_MAX || *stop.borrow() {
                        break;
                    }
                    resends += 1;
                    unanswered = client.place(process, seq, Some(order)).await;
                }
                seq += 1;
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    Ok(())
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
}

impl Client {
    /// Places one order (or sends `again`, an earlier one, with its key and body); returns
    /// the order if the outcome was info (the process must retire).
    async fn place(
        &mut self,
        process: u64,
        seq: u64,
        again: Option<(String, serde_json::Value)>,
    ) -> Option<(String, serde_json::Value)> {
        let i = (process as usize) % self.urls.len();
        let node = self.nodes[i].clone();
        let (key, body) = match again {
            Some(order) => order,
            None => {
                let rng = &mut self.rng;
                let body = json!({
                    "customer": format!("c{}", rng.gen_range(0..100)),
                    "items": [{"sku": format!("sku-{}", rng.gen_range(0..self.skus)), "qty": rng.gen_range(1..=3)}],
                    "amount": rng.gen_range(100..=20_000),
                });
                (format!("k-p{process}-{seq}"), body)
            }
        };
        let mut value = body.clone();
        value["key"] = json!(key);
        let p = Process::Client(process);
        self.history.record(
            p,
            OpType::Invoke,
            f::PLACE_ORDER,
            value,
            Some(node.clone()),
            None,
        );
        let sent = self
            .http
            .post(format!("{}/orders", self.urls[i]))
            .header("idempotency-key", &key)
            .json(&body)
            .send()
            .await;
        let (op_type, value, error) = match sent {
            Ok(resp) => {
                let status = resp.status();
                let body: serde_json::Value = resp.json().await.unwrap_or(serde_json::Value::Null);
                if status.as_u16() == 202 {
                    (
                        OpType::Ok,
                        json!({"key": key, "order_id": body.get("order_id")}),
                        None,
                    )
                } else if status.is_client_error() {
                    (
                        OpType::Fail,
                        json!({"key": key}),
                        Some(format!("HTTP {status}: {body}")),
                    )
                } else {
                    (
                        OpType::Info,
                        json!({"key": key}),
                        Some(format!("HTTP {status}: {body}")),
                    )
                }
            }
            Err(e) => (OpType::Info, json!({"key": key}), Some(error_text(&e))),
        };
        if let Ok(mut t) = self.tally.lock() {
            match op_type {
                OpType::Ok => t.ok += 1,
                OpType::Fail => t.fail += 1,
                _ => t.info += 1,
            }
        }
        self.history
            .record(p, op_type, f::PLACE_ORDER, value, Some(node), error);
        (op_type == OpType::Info).then_some((key, body))
    }
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
