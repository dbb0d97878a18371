//! The order role: `POST /orders` appends an order to a durable log and answers 202; a saga
//! worker consumes the log in order and charges each order once through payment, under the
//! idempotency key `<order_id>:charge`.
//!
//! The saga's status is written before each step, so a restarted process resumes every order
//! from where it stopped; because the step key is derived from the order, resuming a step that
//! may already have happened cannot repeat its effect.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::Notify;

use crate::cli::OrderArgs;
use crate::client::{Downstream, Outcome, RetryPolicy};
use crate::db::{Db, Table};
use crate::http::{common_routes, idempotency_key, ApiError, JsonBody, Page};
use crate::ids;
use crate::telemetry;

const ORDERS: Table = Table::new("orders");
const LOG: Table = Table::new("log");
const META: Table = Table::new("meta");
const LOG_END: &str = "log_end";
const CONSUMED: &str = "consumed";

/// Order statuses.
pub mod status {
    /// In the log, saga not started.
    pub const ACCEPTED: &str = "accepted";
    /// Charge requested; outcome not yet known.
    pub const CHARGING: &str = "charging";
    /// Charged.
    pub const COMPLETED: &str = "completed";
    /// Refused before any charge.
    pub const REJECTED: &str = "rejected";
}

/// One line item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Item {
    /// SKU.
    pub sku: String,
    /// Units, at least 1.
    pub qty: i64,
}

/// Body of `POST /orders`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderRequest {
    /// Who orders.
    pub customer: String,
    /// What, at least one item.
    pub items: Vec<Item>,
    /// Cents, at least 1.
    pub amount: i64,
}

/// One saga step as it happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// `charge`.
    pub step: String,
    /// `ok`, `failed`, `unknown`.
    pub outcome: String,
    /// When.
    pub at_unix_ms: u64,
}

/// An order and its saga state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRecord {
    /// Derived from the idempotency key.
    pub order_id: String,
    /// The client's key.
    pub idempotency_key: String,
    /// Log offset.
    pub offset: u64,
    /// See [`status`].
    pub status: String,
    /// Why it was rejected.
    pub reason: Option<String>,
    /// Customer.
    pub customer: String,
    /// Items.
    pub items: Vec<Item>,
    /// Cents.
    pub amount: i64,
    /// Saga steps so far.
    pub steps: Vec<Step>,
}

#[derive(Clone)]
struct Orders {
    db: Db,
    append: Arc<Mutex<()>>,
    wake: Arc<Notify>,
    payment: Downstream,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn offset_key(offset: u64) -> String {
    format!("{offset:020}")
}

fn validate(req: &OrderRequest) -> Result<(), ApiError> {
    if req.customer.trim().is_empty() {
        return Err(ApiError::bad_request(
            "bad_customer",
            "customer must not be empty",
        ));
    }
    if req.items.is_empty() || req.items.len() > 100 {
        return Err(ApiError::bad_request(
            "bad_items",
            "items must hold 1 to 100 entries",
        ));
    }
    for item in &req.items {
        if item.sku.trim().is_empty() {
            return Err(ApiError::bad_request("bad_sku", "every item needs a sku"));
        }
        if item.qty <= 0 {
            return Err(ApiError::bad_request(
                "bad_quantity",
                format!(
                    "item {}: qty must be at least 1, got {}",
                    item.sku, item.qty
                ),
            ));
        }
    }
    if req.amount <= 0 {
        return Err(ApiError::bad_request(
            "bad_amount",
            format!(
                "amount must be a positive number of cents, got {}",
                req.amount
            ),
        ));
    }
    Ok(())
}

impl Orders {
    fn meta(&self, key: &str) -> anyhow::Result<u64> {
        Ok(self.db.get::<u64>(META, key)?.unwrap_or(0))
    }

    /// Appends a new order or finds the one this key already made.
    fn accept(&self, key: &str, req: &OrderRequest) -> Result<(StatusCode, OrderRecord), ApiError> {
        let _append = self
            .append
            .lock()
            .map_err(|_| ApiError::internal("append lock poisoned"))?;
        let id = ids::order_id(key);
        if let Some(existing) = self.db.get::<OrderRecord>(ORDERS, &id)? {
            let same = existing.idempotency_key == key
                && existing.customer == req.customer
                && existing.items == req.items
                && existing.amount == req.amount;
            if !same {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "idempotency_key_reused",
                    format!("key {key:?} already placed order {id} with another payload"),
                ));
            }
            return Ok((StatusCode::ACCEPTED, existing));
        }
        let offset = self.meta(LOG_END)?;
        let rec = OrderRecord {
            order_id: id.clone(),
            idempotency_key: key.to_owned(),
            offset,
            status: status::ACCEPTED.into(),
            reason: None,
            customer: req.customer.clone(),
            items: req.items.clone(),
            amount: req.amount,
            steps: Vec::new(),
        };
        let mut txn = self.db.begin()?;
        txn.put(ORDERS, &id, &rec)?;
        txn.put(LOG, &offset_key(offset), &id)?;
        txn.put(META, LOG_END, &(offset + 1))?;
        txn.commit()?;
        metrics::counter!("orders_accepted_total").increment(1);
        Ok((StatusCode::ACCEPTED, rec))
    }

    fn save(&self, rec: &OrderRecord) -> anyhow::Result<()> {
        let mut txn = self.db.begin()?;
        txn.put(ORDERS, &rec.order_id, rec)?;
        txn.commit()
    }

    /// Drives one saga to a terminal status. Retries an unknown charge under the same key until
    /// payment gives a definite answer.
    async fn drive(&self, id: &str) -> anyhow::Result<()> {
        let mut rec: OrderRecord = self
            .db
            .get(ORDERS, id)?
            .with_context(|| format!("log names order {id}, which is missing"))?;
        let mut backoff = Duration::from_millis(100);
        loop {
            match rec.status.as_str() {
                status::ACCEPTED => {
                    rec.status = status::CHARGING.into();
                    self.save(&rec)?;
                }
                status::CHARGING => {
                    let key = ids::step_key(id, "charge");
                    let body = json!({"order_id": id, "amount": rec.amount});
                    match self.payment.post("/charge", &key, &body).await {
                        Outcome::Done { status, body } if status < 300 => {
                            rec.steps.push(Step {
                                step: "charge".into(),
                                outcome: "ok".into(),
                                at_unix_ms: now_ms(),
                            });
                            rec.status = status::COMPLETED.into();
                            let _ = body;
                            self.save(&rec)?;
                        }
                        Outcome::Done { status, body } => {
                            rec.steps.push(Step {
                                step: "charge".into(),
                                outcome: "failed".into(),
                                at_unix_ms: now_ms(),
                            });
                            rec.status = status::REJECTED.into();
                            rec.reason =
                                Some(format!("payment refused the charge: HTTP {status}: {body}"));
                            self.save(&rec)?;
                        }
                        Outcome::Unknown { error } => {
                            tracing::warn!(order_id = id, %error, "charge outcome unknown; will retry under the same key");
                            tokio::time::sleep(backoff).await;
                            backoff = (backoff * 2).min(Duration::from_secs(2));
                        }
                    }
                }
                _ => {
                    metrics::counter!("sagas_finished_total", "status" => rec.status.clone())
                        .increment(1);
                    return Ok(());
                }
            }
        }
    }

    /// Consumes the log forever, one saga at a time, in log order.
    async fn consume(self) {
        loop {
            let step = async {
                let consumed = self.meta(CONSUMED)?;
                let end = self.meta(LOG_END)?;
                metrics::gauge!("consumer_lag_records").set(end.saturating_sub(consumed) as f64);
                if consumed >= end {
                    return Ok::<bool, anyhow::Error>(false);
                }
                let id: String = self
                    .db
                    .get(LOG, &offset_key(consumed))?
                    .with_context(|| format!("log offset {consumed} is missing"))?;
                self.drive(&id).await?;
                let mut txn = self.db.begin()?;
                txn.put(META, CONSUMED, &(consumed + 1))?;
                txn.commit()?;
                Ok(true)
            };
            match step.await {
                Ok(true) => {}
                Ok(false) => {
                    let _ = tokio::time::timeout(Duration::from_millis(200), self.wake.notified())
                        .await;
                }
                Err(e) => {
                    tracing::error!(
                        error = format!("{e:#}"),
                        "saga worker step failed; retrying"
                    );
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    }
}

async fn place(
    State(svc): State<Orders>,
    headers: HeaderMap,
    JsonBody(req): JsonBody<OrderRequest>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let key = idempotency_key(&headers)?;
    validate(&req)?;
    let worker = svc.clone();
    let (status, rec) = tokio::task::spawn_blocking(move || worker.accept(&key, &req))
        .await
        .map_err(|e| ApiError::internal(format!("worker failed: {e}")))??;
    svc.wake.notify_one();
    Ok((
        status,
        Json(json!({"order_id": rec.order_id, "status": rec.status})),
    ))
}

async fn read(
    State(svc): State<Orders>,
    Path(id): Path<String>,
) -> Result<Json<OrderRecord>, ApiError> {
    svc.db
        .get::<OrderRecord>(ORDERS, &id)?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no order {id:?}")))
}

async fn list(
    State(svc): State<Orders>,
    Query(page): Query<Page>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let limit = page.limit();
    let items: Vec<(String, OrderRecord)> = svc.db.scan(ORDERS, page.after.as_deref(), limit)?;
    let next = if items.len() == limit {
        items.last().map(|(k, _)| k.clone())
    } else {
        None
    };
    let orders: Vec<OrderRecord> = items.into_iter().map(|(_, r)| r).collect();
    Ok(Json(json!({"items": orders, "next": next})))
}

/// Runs the order role until SIGTERM.
pub async fn run(args: OrderArgs) -> anyhow::Result<()> {
    telemetry::init_logging("order", &args.common.node);
    let metrics = telemetry::install_metrics()?;
    crate::cli::spawn_parent_watch(args.common.watch_parent);
    std::fs::create_dir_all(&args.common.data_dir)?;
    let policy = RetryPolicy {
        attempt_timeout: args.call_timeout(),
        ..RetryPolicy::default()
    };
    let svc = Orders {
        db: Db::open(&args.common.data_dir.join("order.redb"))?,
        append: Arc::new(Mutex::new(())),
        wake: Arc::new(Notify::new()),
        payment: Downstream::new(
            "payment",
            args.payment.trim_end_matches('/').to_owned(),
            policy,
        ),
    };
    tokio::spawn(svc.clone().consume());
    let app = Router::new()
        .route("/orders", post(place))
        .route("/orders/{id}", get(read))
        .route("/admin/orders", get(list))
        .with_state(svc)
        .merge(common_routes("order", args.common.node.clone(), metrics));
    super::serve(args.common.listen, app).await
}
