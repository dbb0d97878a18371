//! The order role. `POST /orders` (any node; non-leaders forward to the leader) appends the
//! order to a durable log in the quorum store and answers 202 with the order id; the same key
//! again returns the same order. The elected order leader drives every saga ([`saga`]).
//!
//! Store layout (domain `order`): `orders/<id>` holds the order with its saga state,
//! `log/<offset>` names the order at each log offset, `meta/log_end` is the next offset; one
//! append writes all three atomically per replica.
//!
//! A leader's term: it reads the log end, scans the orders and resumes every one that is not
//! terminal, then drives new appends at once and sweeps for stragglers (an order whose write
//! only reached a minority may surface later through read repair) every [`SWEEP_INTERVAL`].
//! `consumer_lag_records` is the log end minus the lowest offset whose saga has not ended.

pub mod model;
pub mod saga;

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use tokio::sync::{watch, Semaphore};

use self::model::{validate, OrderRecord, OrderRequest};
use super::common::{admin_page, now_ms, Answer};
use super::effect::{self, Kind};
use super::leader::{not_leader, serve_routed, store_unavailable, write_error, Leader};
use crate::budget::RetryBudget;
use crate::cli::OrderArgs;
use crate::client::{Downstream, RetryPolicy};
use crate::http::{common_routes, idempotency_key, ApiError, JsonBody, Page};
use crate::ids;
use crate::quorum::{Quorum, WriteOutcome};

/// How often the leader looks for sagas nobody drives.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(5);
/// Attempts of an append whose outcome is unknown.
const APPEND_ATTEMPTS: u32 = 3;
/// How long an append waits for a new leader's recovery to finish.
const TERM_READY_WAIT: Duration = Duration::from_secs(2);

const ORDERS: &str = "orders/";
const LOG_END: &str = "meta/log_end";

fn order_key(id: &str) -> String {
    format!("{ORDERS}{id}")
}

fn log_key(offset: u64) -> String {
    format!("log/{offset:020}")
}

/// One leadership term of this process.
struct Term {
    token: u64,
    /// Next log offset; the lock serializes appends.
    log_end: tokio::sync::Mutex<u64>,
    log_end_seen: AtomicU64,
    /// Offsets whose saga has not ended → order id.
    pending: Mutex<BTreeMap<u64, String>>,
    /// Orders being driven now.
    driving: Mutex<HashSet<String>>,
    ready: watch::Sender<bool>,
}

impl Term {
    fn lag(&self) -> u64 {
        let end = self.log_end_seen.load(Ordering::Relaxed);
        let consumed = self
            .pending
            .lock()
            .ok()
            .and_then(|p| p.keys().next().copied())
            .unwrap_or(end);
        end.saturating_sub(consumed.min(end))
    }
}

/// The order service (shared by handlers and saga drivers).
#[derive(Clone)]
pub struct Orders {
    quorum: Quorum,
    leader: Leader,
    inventory: Downstream,
    payment: Downstream,
    shipping: Downstream,
    compensation: bool,
    sagas: Arc<Semaphore>,
    term: Arc<Mutex<Option<Arc<Term>>>>,
}

impl Orders {
    fn current_term(&self) -> Option<Arc<Term>> {
        self.term.lock().ok().and_then(|t| t.clone())
    }

    /// Starts driving `id` (at `offset`) unless it is already being driven.
    fn enqueue(&self, term: &Arc<Term>, id: String, offset: u64) {
        if let Ok(mut p) = term.pending.lock() {
            p.insert(offset, id.clone());
        }
        let fresh = term
            .driving
            .lock()
            .map(|mut d| d.insert(id.clone()))
            .unwrap_or(false);
        if !fresh {
            return;
        }
        let (me, term) = (self.clone(), term.clone());
        tokio::spawn(async move {
            let Ok(_permit) = me.sagas.clone().acquire_owned().await else {
                return;
            };
            let result = me.drive(term.token, &id).await;
            if let Ok(mut d) = term.driving.lock() {
                d.remove(&id);
            }
            match result {
                Ok(()) => {
                    if let Ok(mut p) = term.pending.lock() {
                        p.remove(&offset);
                    }
                }
                Err(saga::Stop::Parked(why)) => {
                    tracing::warn!(order_id = %id, %why, "saga parked until the next sweep");
                }
                Err(saga::Stop::Lost) => {}
            }
        });
    }

    /// Appends a new order, or returns the one this key already placed.
    async fn accept(&self, token: u64, key: String, req: OrderRequest) -> Result<Answer, ApiError> {
        let term = self.ready_term(token).await?;
        let mut log_end = term.log_end.lock().await;
        let id = ids::order_id(&key);
        let existing: Option<OrderRecord> = self
            .quorum
            .read_value(&order_key(&id))
            .await
            .map_err(store_unavailable)?;
        if let Some(rec) = existing {
            let asked = (Kind::Order, &model::placed(&key, &req));
            effect::check_replay(&key, (Kind::Order, &rec.placed_by()), asked)?;
            effect::count_replay(Kind::Order, &key);
            if !rec.is_terminal() {
                // E.g. an earlier append of this key whose outcome was unknown.
                self.enqueue(&term, rec.order_id.clone(), rec.offset);
            }
            return Ok(accepted(&rec));
        }
        let offset = *log_end;
        let rec = OrderRecord {
            order_id: id.clone(),
            idempotency_key: key,
            offset,
            status: model::Status::Accepted,
            reason: None,
            customer: req.customer,
            items: req.items,
            amount: req.amount,
            steps: Vec::new(),
            progress: model::Progress::default(),
            accepted_unix_ms: now_ms(),
        };
        let entries = vec![
            (
                order_key(&id),
                serde_json::to_value(&rec).unwrap_or_default(),
            ),
            (log_key(offset), json!(id)),
            (LOG_END.to_owned(), json!(offset + 1)),
        ];
        let mut outcome = WriteOutcome::Unknown {
            fenced_by: None,
            reason: "not attempted".into(),
        };
        for _ in 0..APPEND_ATTEMPTS {
            outcome = self.quorum.write(token, entries.clone()).await;
            if !matches!(
                outcome,
                WriteOutcome::Unknown {
                    fenced_by: None,
                    ..
                }
            ) {
                break;
            }
        }
        // The offset may be taken even if the append failed; never hand it out twice.
        *log_end = offset + 1;
        term.log_end_seen.store(offset + 1, Ordering::Relaxed);
        if !matches!(outcome, WriteOutcome::Ok(_)) {
            return Err(write_error(&outcome, Some(self.leader.elector())));
        }
        drop(log_end);
        effect::count_applied(Kind::Order, &rec.idempotency_key);
        metrics::counter!("orders_accepted_total").increment(1);
        self.enqueue(&term, id, offset);
        Ok(accepted(&rec))
    }

    async fn ready_term(&self, token: u64) -> Result<Arc<Term>, ApiError> {
        let term = self
            .current_term()
            .filter(|t| t.token == token)
            .ok_or_else(|| not_leader("leadership changed".into()))?;
        let mut ready = term.ready.subscribe();
        let waited = tokio::time::timeout(TERM_READY_WAIT, ready.wait_for(|r| *r)).await;
        if !matches!(waited, Ok(Ok(_))) {
            return Err(ApiError::unavailable(
                "leader_starting",
                "the new order leader is still resuming sagas",
            ));
        }
        Ok(term)
    }

    /// Follows the elector: a new term on becoming leader, none after stepping down.
    async fn supervise(self) {
        let mut rx = self.leader.elector().subscribe();
        loop {
            let view = rx.borrow_and_update().clone();
            let current = self.current_term().map(|t| t.token);
            if view.is_leader && current != Some(view.token) {
                let (ready, _) = watch::channel(false);
                let term = Arc::new(Term {
                    token: view.token,
                    log_end: tokio::sync::Mutex::new(0),
                    log_end_seen: AtomicU64::new(0),
                    pending: Mutex::new(BTreeMap::new()),
                    driving: Mutex::new(HashSet::new()),
                    ready,
                });
                if let Ok(mut t) = self.term.lock() {
                    *t = Some(term.clone());
                }
                tokio::spawn(self.clone().run_term(term));
            } else if !view.is_leader && current.is_some() {
                if let Ok(mut t) = self.term.lock() {
                    *t = None;
                }
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    }

    /// Recovers the log end and every open saga, then sweeps while the term lasts.
    async fn run_term(self, term: Arc<Term>) {
        let mut first = true;
        while self.leader.elector().leadership() == Some(term.token) {
            match self.sweep(&term, first).await {
                Ok(()) if first => {
                    first = false;
                    term.ready.send_replace(true);
                    tracing::info!(
                        token = term.token,
                        log_end = term.log_end_seen.load(Ordering::Relaxed),
                        "order leader resumed open sagas"
                    );
                }
                Ok(()) => {}
                Err(e) => tracing::warn!(error = %e, "sweep failed; retrying"),
            }
            tokio::time::sleep(if first {
                Duration::from_millis(200)
            } else {
                SWEEP_INTERVAL
            })
            .await;
        }
    }

    /// Enqueues every order that is not terminal; on the first sweep also sets the log end.
    async fn sweep(&self, term: &Arc<Term>, first: bool) -> Result<(), ApiError> {
        let mut log_end = if first {
            let stored: Option<u64> = self
                .quorum
                .read_value(LOG_END)
                .await
                .map_err(store_unavailable)?;
            stored.unwrap_or(0)
        } else {
            0
        };
        let records = self
            .quorum
            .scan_all(ORDERS, 500)
            .await
            .map_err(store_unavailable)?;
        for r in records {
            let Ok(rec) = serde_json::from_value::<OrderRecord>(r.value) else {
                continue;
            };
            log_end = log_end.max(rec.offset + 1);
            if !rec.is_terminal() {
                self.enqueue(term, rec.order_id, rec.offset);
            }
        }
        if first {
            *term.log_end.lock().await = log_end;
            term.log_end_seen.store(log_end, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Exports `consumer_lag_records` every second (0 on non-leaders: they consume nothing).
    async fn report_lag(self) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let lag = self.current_term().map_or(0, |t| t.lag());
            metrics::gauge!("consumer_lag_records").set(lag as f64);
        }
    }
}

fn accepted(rec: &OrderRecord) -> Answer {
    (
        StatusCode::ACCEPTED,
        Json(json!({"order_id": rec.order_id, "status": rec.status})),
    )
}

async fn place(
    State(svc): State<Orders>,
    headers: HeaderMap,
    JsonBody(req): JsonBody<OrderRequest>,
) -> Response {
    let key = match idempotency_key(&headers).and_then(|k| validate(&req).map(|_| k)) {
        Ok(k) => k,
        Err(e) => return e.into_response(),
    };
    match svc.leader.route("/orders", &headers, &req).await {
        Ok(route) => serve_routed(route, |token| svc.accept(token, key, req)).await,
        Err(e) => e.into_response(),
    }
}

async fn read(
    State(svc): State<Orders>,
    Path(id): Path<String>,
) -> Result<Json<OrderRecord>, ApiError> {
    if id.is_empty() || id.len() > 200 {
        return Err(ApiError::not_found(format!("no order {id:?}")));
    }
    svc.quorum
        .read_value::<OrderRecord>(&order_key(&id))
        .await
        .map_err(store_unavailable)?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no order {id:?}")))
}

async fn list(
    State(svc): State<Orders>,
    Query(page): Query<Page>,
) -> Result<Json<serde_json::Value>, ApiError> {
    admin_page(&svc.quorum, ORDERS, &page).await
}

async fn admin_leader(State(svc): State<Orders>) -> Json<serde_json::Value> {
    svc.leader.admin()
}

/// Runs the order role until SIGTERM.
pub async fn run(args: OrderArgs) -> anyhow::Result<()> {
    let boot = super::boot("order", &args.common)?;
    Kind::register(&[Kind::Order]);
    let settings = boot.cfg.settings.clone();
    let (replicas, quorum) = super::common::store_for(&boot, "order")?;
    let elector = super::common::elector_for(&boot, &replicas, &quorum, !args.no_lease_check);
    let leader = Leader::new(
        "order",
        &boot.cfg,
        elector.clone(),
        settings.call_timeout() * 3 / 4,
        &boot.peers,
    );
    let policy = RetryPolicy {
        attempt_timeout: settings.call_timeout(),
        ..RetryPolicy::default()
    };
    let downstream = |name: &'static str| {
        let targets = boot
            .cfg
            .role_urls(name)
            .into_iter()
            .map(|(_, u)| u)
            .collect();
        let budget = (!args.no_retry_budget).then(|| {
            RetryBudget::new(
                settings.retry_budget_ratio,
                settings.retry_budget_floor_per_s,
            )
        });
        Downstream::new(name, targets, policy, budget, boot.rng.clone(), &boot.peers)
    };
    let svc = Orders {
        quorum,
        leader,
        inventory: downstream("inventory"),
        payment: downstream("payment"),
        shipping: downstream("shipping"),
        compensation: !args.no_compensation,
        sagas: Arc::new(Semaphore::new(settings.saga_concurrency)),
        term: Arc::new(Mutex::new(None)),
    };
    tokio::spawn(svc.clone().supervise());
    tokio::spawn(svc.clone().report_lag());
    let app = Router::new()
        .route("/orders", post(place))
        .route("/orders/{id}", get(read))
        .route("/admin/orders", get(list))
        .route("/admin/leader", get(admin_leader))
        .with_state(svc)
        .merge(common_routes(
            "order",
            boot.cfg.node.clone(),
            boot.metrics.clone(),
        ));
    let served = super::serve(&boot, app).await;
    elector.release().await;
    served
}
