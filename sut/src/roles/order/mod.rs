//! The order role. `POST /orders` is served by any order node, leader or not: it accepts the
//! order into this node's partition of the intake log ([`intake`]) with one quorum write and
//! answers 202 with the order id; the same key again, on any node, names the same order. The
//! elected order leader consumes every partition ([`consume`]) and drives every saga ([`saga`]).
//!
//! Store layout (domain `order`): `orders/<id>` holds the order with its saga state (written by
//! the leader only), `meta/taken/<node>` the last position the leader took from each partition.
//!
//! A leader's term: it reads the taken positions, scans the orders and resumes every one that
//! is not terminal, then consumes the partitions every [`CONSUME_INTERVAL`] and sweeps every
//! [`SWEEP_INTERVAL`]: it drives again every saga it knows to be open (a parked one resumes)
//! and reads the next [`SWEEP_PAGE`] order records for stragglers (an order whose write only
//! reached a minority may surface later through read repair).

pub mod consume;
pub mod intake;
pub mod model;
pub mod nudge;
pub mod saga;

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use tokio::sync::Semaphore;

use self::intake::{IntakeRecord, Partition, Pos};
use self::model::{validate, OrderRecord, OrderRequest};
use super::common::{now_ms, Answer};
use super::effect::Kind;
use super::leader::{store_unavailable, Leader};
use crate::budget::RetryBudget;
use crate::cli::OrderArgs;
use crate::client::{Downstream, RetryPolicy};
use crate::http::{common_routes, idempotency_key, ApiError, JsonBody, Page};
use crate::ids;
use crate::quorum::Quorum;
use crate::telemetry::{self, Repeat};

/// How often the leader looks for sagas nobody drives.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(5);
/// Order records one periodic sweep reads at most: a rolling window over the orders, each sweep
/// going on after the last record the one before read (a new term's recovery reads them all).
/// Without it every sweep read every order of the run, a cost growing with the run.
pub const SWEEP_PAGE: usize = 100;
/// Pages a full sweep reads at most (a million orders).
const MAX_SWEEP_PAGES: usize = 10_000;
/// Attempts of one page of a full sweep: a page that failed is read again from where it
/// stopped, not the whole sweep (measured: in a 30-minute soak new leaders' recoveries failed
/// 28 times on a page's scan timing out, each beginning again from the first page).
const SWEEP_PAGE_ATTEMPTS: u32 = 10;
/// How often the leader looks for new records in the intake partitions.
pub const CONSUME_INTERVAL: Duration = Duration::from_millis(100);
/// How long the consumer waits at a missing intake position before it takes it for a failed
/// append: longer than any write still in flight (three attempts of a 1 s replica timeout
/// end well before).
pub const HOLE_GRACE: Duration = Duration::from_secs(5);
/// How often every node exports `consumer_lag_records`.
const LAG_INTERVAL: Duration = Duration::from_secs(1);

const ORDERS: &str = "orders/";

fn order_key(id: &str) -> String {
    format!("{ORDERS}{id}")
}

/// One leadership term of this process.
struct Term {
    token: u64,
    /// The last position taken from each partition.
    taken: Mutex<BTreeMap<String, Pos>>,
    /// Orders taken in whose saga has not ended (parked ones included).
    pending: Mutex<HashSet<String>>,
    /// Orders being driven now.
    driving: Mutex<HashSet<String>>,
    /// Per partition, the missing position the consumer waits at and since when.
    holes: Mutex<BTreeMap<String, (Pos, Instant)>>,
}

impl Term {
    fn taken(&self, node: &str) -> Option<Pos> {
        self.taken.lock().ok().and_then(|t| t.get(node).copied())
    }

    fn set_taken(&self, node: &str, pos: Pos) {
        if let Ok(mut t) = self.taken.lock() {
            t.insert(node.to_owned(), pos);
        }
    }

    /// Whether the gap at `missing` in partition `node` has been seen for [`HOLE_GRACE`]: an
    /// append that failed, not one a write quorum acknowledged and this scan missed. The
    /// first sighting starts the clock.
    fn hole_is_old(&self, node: &str, missing: Pos) -> bool {
        let Ok(mut holes) = self.holes.lock() else {
            return false;
        };
        let now = Instant::now();
        let since = match holes.get(node) {
            Some(&(pos, since)) if pos == missing => since,
            _ => {
                holes.insert(node.to_owned(), (missing, now));
                now
            }
        };
        let old = now.duration_since(since) >= HOLE_GRACE;
        if old {
            holes.remove(node);
            tracing::warn!(%node, incarnation = missing.incarnation, offset = missing.offset,
                "intake position never written (a failed append); consuming past it");
            metrics::counter!("intake_holes_skipped_total").increment(1);
        }
        old
    }

    /// Sagas taken in and not ended.
    fn open(&self) -> usize {
        self.pending.lock().map(|p| p.len()).unwrap_or(0)
    }
}

/// The order service (shared by handlers and saga drivers).
#[derive(Clone)]
pub struct Orders {
    quorum: Quorum,
    intake: Arc<Partition>,
    /// The order nodes: one intake partition each.
    partitions: Arc<Vec<String>>,
    leader: Leader,
    inventory: Downstream,
    payment: Downstream,
    shipping: Downstream,
    compensation: bool,
    sagas: Arc<Semaphore>,
    /// Slots of the re-drives this process runs ([`nudge`]).
    nudges: Arc<Semaphore>,
    term: Arc<Mutex<Option<Arc<Term>>>>,
}

impl Orders {
    fn current_term(&self) -> Option<Arc<Term>> {
        self.term.lock().ok().and_then(|t| t.clone())
    }

    /// Starts driving `id` unless it is already being driven.
    fn enqueue(&self, term: &Arc<Term>, id: String) {
        if let Ok(mut p) = term.pending.lock() {
            p.insert(id.clone());
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
            // Boxed: a task waiting for its slot holds a pointer, not the whole saga's state
            // machine (a backlog of thousands of waiting sagas after a long fault).
            let result = Box::pin(me.drive(term.token, &id)).await;
            if let Ok(mut d) = term.driving.lock() {
                d.remove(&id);
            }
            match result {
                Ok(()) => {
                    if let Ok(mut p) = term.pending.lock() {
                        p.remove(&id);
                    }
                }
                Err(saga::Stop::Parked(why)) => {
                    tracing::warn!(order_id = %id, %why, "saga parked until the next sweep");
                }
                Err(saga::Stop::Lost) => {}
            }
        });
    }

    /// Accepts an order into this node's intake partition, or answers with the order this key
    /// already placed (on any node).
    async fn accept(&self, key: String, req: OrderRequest) -> Result<Answer, ApiError> {
        let id = ids::order_id(&key);
        let (order_at, claim_at) = (order_key(&id), intake::claim_key(&id));
        let (order, claim) = futures::join!(
            self.quorum.read_value::<OrderRecord>(&order_at),
            self.intake.quorum().read_value::<IntakeRecord>(&claim_at),
        );
        let reused = || {
            ApiError::unprocessable(
                "idempotency_key_reused",
                format!("key {key:?} already placed order {id} with another payload"),
            )
        };
        if let Some(rec) = order.map_err(store_unavailable)? {
            if rec.idempotency_key != key || !rec.same_payload(&req) {
                return Err(reused());
            }
            deduplicated();
            // The client asks again while the saga has not ended: re-drive its pending step.
            if !rec.is_terminal() {
                self.nudge(&rec.order_id);
            }
            return Ok(accepted(&rec.order_id, rec.status));
        }
        // Accepted before but not consumed yet: appended again, so that this answer, too,
        // rests on a record this request saw acknowledged (the consumer makes one order).
        if let Some(claim) = claim.map_err(store_unavailable)? {
            if !claim.same_request(&key, &req) {
                return Err(reused());
            }
            deduplicated();
        }
        let rec = self
            .intake
            .append(|node, pos| IntakeRecord {
                order_id: id.clone(),
                idempotency_key: key.clone(),
                node: node.to_owned(),
                pos,
                customer: req.customer,
                items: req.items,
                amount: req.amount,
                accepted_unix_ms: now_ms(),
            })
            .await?;
        metrics::counter!("orders_accepted_total").increment(1);
        Ok(accepted(&rec.order_id, model::Status::Accepted))
    }

    /// Follows the elector: a new term on becoming leader, none after stepping down.
    async fn supervise(self) {
        let mut rx = self.leader.elector().subscribe();
        loop {
            let view = rx.borrow_and_update().clone();
            let current = self.current_term().map(|t| t.token);
            if view.is_leader && current != Some(view.token) {
                let term = Arc::new(Term {
                    token: view.token,
                    taken: Mutex::new(BTreeMap::new()),
                    pending: Mutex::new(HashSet::new()),
                    driving: Mutex::new(HashSet::new()),
                    holes: Mutex::new(BTreeMap::new()),
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

    /// Recovers the taken positions and every open saga, then consumes the partitions and
    /// sweeps for as long as the term is this node's current one (until `supervise` replaces or
    /// clears it). A moment without a checked lease (the lease ran out during a stall and the
    /// elector has not renewed it yet) pauses the work instead of ending it: the elector may
    /// renew the same term, and a view that never stopped saying leader starts no new one.
    async fn run_term(self, term: Arc<Term>) {
        let current = || self.current_term().is_some_and(|t| Arc::ptr_eq(&t, &term));
        let leading = || self.leader.elector().leadership() == Some(term.token);
        while current() {
            if leading() {
                match self.recover(&term).await {
                    Ok(()) => break,
                    Err(e) => tracing::warn!(error = %e, "recovery failed; retrying"),
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let mut next_sweep = Instant::now() + SWEEP_INTERVAL;
        let mut cursor: Option<String> = None;
        while current() {
            if !leading() {
                tokio::time::sleep(CONSUME_INTERVAL).await;
                continue;
            }
            if Instant::now() >= next_sweep {
                if let Err(e) = self.sweep_some(&term, &mut cursor).await {
                    tracing::warn!(error = %e, "sweep failed; retrying");
                }
                next_sweep = Instant::now() + SWEEP_INTERVAL;
            }
            match self.consume(&term).await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => tracing::debug!(error = %e, "consuming the intake failed; retrying"),
            }
            tokio::time::sleep(CONSUME_INTERVAL).await;
        }
        tracing::info!(token = term.token, "order term ended");
    }

    /// A new term's start: the taken positions, then every open saga.
    async fn recover(&self, term: &Arc<Term>) -> Result<(), ApiError> {
        let taken = self.stored_taken().await?;
        for (node, pos) in self.partitions.iter().zip(taken) {
            if let Some(p) = pos {
                term.set_taken(node, p);
            }
        }
        self.sweep(term).await?;
        tracing::info!(
            token = term.token,
            open = term.open(),
            "order leader resumed open sagas"
        );
        Ok(())
    }

    /// A periodic sweep: drives again every saga this term knows to be open (a parked one
    /// resumes), then enqueues the open orders among the next [`SWEEP_PAGE`] order records
    /// after `cursor` (a saga whose write surfaced later, by read repair), and moves `cursor`
    /// on (back to the start after the last record).
    async fn sweep_some(
        &self,
        term: &Arc<Term>,
        cursor: &mut Option<String>,
    ) -> Result<(), ApiError> {
        let known: Vec<String> = term
            .pending
            .lock()
            .map(|p| p.iter().cloned().collect())
            .unwrap_or_default();
        for id in known {
            self.enqueue(term, id);
        }
        *cursor = self.sweep_page(term, cursor.as_deref()).await?;
        Ok(())
    }

    /// Enqueues the open orders among the [`SWEEP_PAGE`] order records after `after`; returns
    /// the cursor of the page after (none after the last record).
    async fn sweep_page(
        &self,
        term: &Arc<Term>,
        after: Option<&str>,
    ) -> Result<Option<String>, ApiError> {
        let (records, next) = self
            .quorum
            .scan(ORDERS, after, SWEEP_PAGE)
            .await
            .map_err(store_unavailable)?;
        for r in records {
            let Ok(rec) = serde_json::from_value::<OrderRecord>(r.value) else {
                continue;
            };
            if !rec.is_terminal() {
                self.enqueue(term, rec.order_id);
            }
        }
        Ok(next)
    }

    /// Enqueues every order that is not terminal, a page at a time (so that a new term's
    /// recovery holds one page of records in memory, not every order of the run).
    async fn sweep(&self, term: &Arc<Term>) -> Result<(), ApiError> {
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_SWEEP_PAGES {
            let mut attempt = 0;
            cursor = loop {
                match self.sweep_page(term, cursor.as_deref()).await {
                    Ok(next) => break next,
                    Err(e) if attempt + 1 >= SWEEP_PAGE_ATTEMPTS => return Err(e),
                    Err(e) => {
                        tracing::debug!(error = %e, "a sweep page failed; reading it again");
                        attempt += 1;
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            };
            if cursor.is_none() {
                return Ok(());
            }
        }
        Err(ApiError::internal(format!(
            "more than {MAX_SWEEP_PAGES} pages of orders"
        )))
    }

    /// Exports `consumer_lag_records` and `sagas_open` every [`LAG_INTERVAL`]; a node that
    /// cannot read the store keeps its last lag (it cannot see more).
    async fn report_lag(self) {
        metrics::gauge!("consumer_lag_records").set(0.0);
        metrics::gauge!("sagas_open").set(0.0);
        // ConsumerLagHigh reads its increase on every order node, leader or not.
        metrics::counter!("orders_consumed_total").increment(0);
        let mut tick = tokio::time::interval(LAG_INTERVAL);
        loop {
            tick.tick().await;
            metrics::gauge!("sagas_open").set(self.sagas_open() as f64);
            match self.lag().await {
                Ok(lag) => metrics::gauge!("consumer_lag_records").set(lag as f64),
                Err(e) => tracing::debug!(error = %e, "consumer lag not read"),
            }
        }
    }
}

/// A key presented again and answered as the order it placed.
fn deduplicated() {
    telemetry::duplicate_effect("order", Repeat::Deduplicated);
}

fn accepted(order_id: &str, status: model::Status) -> Answer {
    (
        StatusCode::ACCEPTED,
        Json(json!({"order_id": order_id, "status": status})),
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
    match svc.accept(key, req).await {
        Ok(answer) => answer.into_response(),
        Err(e) => e.into_response(),
    }
}

/// `GET /orders/{id}`: the saga record, or, before the leader took the order in, the order as
/// the intake log holds it (status `accepted`).
async fn read(
    State(svc): State<Orders>,
    Path(id): Path<String>,
) -> Result<Json<OrderRecord>, ApiError> {
    if id.is_empty() || id.len() > 200 {
        return Err(ApiError::not_found(format!("no order {id:?}")));
    }
    if let Some(rec) = svc
        .quorum
        .read_value::<OrderRecord>(&order_key(&id))
        .await
        .map_err(store_unavailable)?
    {
        return Ok(Json(rec));
    }
    svc.intake
        .quorum()
        .read_value::<IntakeRecord>(&intake::claim_key(&id))
        .await
        .map_err(store_unavailable)?
        .map(|c| Json(c.to_order()))
        .ok_or_else(|| ApiError::not_found(format!("no order {id:?}")))
}

/// `GET /admin/orders`: the saga records; the last page also lists the orders accepted but not
/// yet taken in by the leader (status `accepted`), so none of them reads as missing.
async fn list(
    State(svc): State<Orders>,
    Query(page): Query<Page>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (records, next) = svc
        .quorum
        .scan(ORDERS, page.after.as_deref(), page.limit())
        .await
        .map_err(store_unavailable)?;
    let mut items: Vec<serde_json::Value> = records.into_iter().map(|r| r.value).collect();
    if next.is_none() {
        for o in svc.unconsumed_orders().await? {
            items.push(serde_json::to_value(o).unwrap_or_default());
        }
    }
    Ok(Json(json!({"items": items, "next": next})))
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
    let (_, intake_quorum) = super::common::store_in(&boot, "order", intake::DOMAIN)?;
    let partitions: Vec<String> = boot
        .cfg
        .role_urls("order")
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    telemetry::register_duplicates(&["order"], &[Repeat::Deduplicated]);
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
        intake: Arc::new(Partition::new(boot.cfg.node.clone(), intake_quorum)),
        partitions: Arc::new(partitions),
        leader,
        inventory: downstream("inventory"),
        payment: downstream("payment"),
        shipping: downstream("shipping"),
        compensation: !args.no_compensation,
        sagas: Arc::new(Semaphore::new(settings.saga_concurrency)),
        nudges: nudge::slots(),
        term: Arc::new(Mutex::new(None)),
    };
    svc.payment.register_routes(&["/charge", "/refund"]);
    svc.shipping.register_routes(&["/ship", "/cancel"]);
    svc.inventory
        .register_routes(&["/reserve", "/commit", "/release"]);
    nudge::register();
    tokio::spawn(svc.clone().supervise());
    tokio::spawn(svc.clone().report_lag());
    let app = Router::new()
        .route("/orders", post(place))
        .route("/orders/{id}", get(read))
        .route("/admin/orders", get(list))
        .route("/admin/leader", get(admin_leader))
        .route("/admin/nudge", post(nudge::handle))
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
