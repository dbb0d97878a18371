//! The payment role: `POST /charge` and `POST /refund`, each under an idempotency key.
//!
//! The effect (a ledger record) and its first result are one durable write. A repeat of the key
//! with the same payload returns the stored record, changes nothing but the record's replay
//! count, and counts a dedup hit in `duplicate_effects_total`. The same key with another payload
//! is refused (422); a repeat while the first is still in flight gets 409. A refund needs a
//! charge of the same order and amount.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::cli::PaymentArgs;
use crate::db::{Db, Table};
use crate::http::{common_routes, idempotency_key, ApiError, JsonBody, Page};
use crate::telemetry;

/// Ledger records by idempotency key.
const LEDGER: Table = Table::new("ledger");

/// Charge or refund.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Money taken.
    Charge,
    /// Money given back.
    Refund,
}

/// Body of a charge or refund.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentRequest {
    /// The order.
    pub order_id: String,
    /// Cents, at least 1.
    pub amount: i64,
}

/// One effect in the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerRecord {
    /// Idempotency key it was made under.
    pub key: String,
    /// Charge or refund.
    pub kind: Kind,
    /// The order.
    pub order_id: String,
    /// Cents.
    pub amount: i64,
    /// Times the key was presented again after the first.
    pub replays: u64,
    /// When it was made.
    pub created_unix_ms: u64,
}

#[derive(Clone)]
struct Payment {
    db: Db,
    in_flight: Arc<Mutex<HashSet<String>>>,
    idempotency: bool,
}

/// Removes a key from the in-flight set when the request ends, however it ends.
struct InFlight {
    set: Arc<Mutex<HashSet<String>>>,
    key: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Ok(mut s) = self.set.lock() {
            s.remove(&self.key);
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The ledger key of the charge a refund of `order_id` must match.
fn charge_key_of(order_id: &str) -> String {
    crate::ids::step_key(order_id, "charge")
}

impl Payment {
    fn enter(&self, key: &str) -> Result<InFlight, ApiError> {
        let mut set = self
            .in_flight
            .lock()
            .map_err(|_| ApiError::internal("in-flight set poisoned"))?;
        if !set.insert(key.to_owned()) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "in_flight",
                format!("a request with key {key:?} is still in flight"),
            ));
        }
        Ok(InFlight {
            set: self.in_flight.clone(),
            key: key.to_owned(),
        })
    }

    /// The whole decision and the write, in one redb transaction (run off the async workers).
    fn apply(
        &self,
        kind: Kind,
        key: &str,
        req: &PaymentRequest,
    ) -> Result<(StatusCode, LedgerRecord), ApiError> {
        let label = match kind {
            Kind::Charge => "charge",
            Kind::Refund => "refund",
        };
        if self.idempotency {
            if let Some(mut rec) = self.db.get::<LedgerRecord>(LEDGER, key)? {
                if rec.kind != kind || rec.order_id != req.order_id || rec.amount != req.amount {
                    return Err(ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "idempotency_key_reused",
                        format!(
                            "key {key:?} was used for a {:?} of order {} amount {}",
                            rec.kind, rec.order_id, rec.amount
                        ),
                    ));
                }
                rec.replays += 1;
                let mut txn = self.db.begin()?;
                txn.put(LEDGER, key, &rec)?;
                txn.commit()?;
                metrics::counter!("duplicate_effects_total", "kind" => label).increment(1);
                tracing::info!(key, kind = label, replays = rec.replays, "dedup hit");
                return Ok((StatusCode::OK, rec));
            }
        }
        if kind == Kind::Refund {
            let charge: Option<LedgerRecord> =
                self.db.get(LEDGER, &charge_key_of(&req.order_id))?;
            match charge {
                Some(c) if c.amount == req.amount => {}
                Some(c) => {
                    return Err(ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "refund_amount_mismatch",
                        format!(
                            "order {} was charged {}, refund asks {}",
                            req.order_id, c.amount, req.amount
                        ),
                    ))
                }
                None => {
                    return Err(ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "no_matching_charge",
                        format!("order {} has no charge to refund", req.order_id),
                    ))
                }
            }
        }
        let rec = LedgerRecord {
            key: key.to_owned(),
            kind,
            order_id: req.order_id.clone(),
            amount: req.amount,
            replays: 0,
            created_unix_ms: now_ms(),
        };
        // Without idempotency every request is a new effect under a fresh storage key.
        let storage_key = if self.idempotency {
            key.to_owned()
        } else {
            format!("{key}#{}", nanos_now())
        };
        let mut txn = self.db.begin()?;
        txn.put(LEDGER, &storage_key, &rec)?;
        txn.commit()?;
        metrics::counter!("payment_effects_total", "kind" => label).increment(1);
        tracing::info!(key, kind = label, order_id = %rec.order_id, amount = rec.amount, "effect recorded");
        Ok((StatusCode::CREATED, rec))
    }
}

fn nanos_now() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

fn validate(req: &PaymentRequest) -> Result<(), ApiError> {
    if req.order_id.trim().is_empty() {
        return Err(ApiError::bad_request(
            "bad_order_id",
            "order_id must not be empty",
        ));
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

async fn handle(
    svc: Payment,
    kind: Kind,
    headers: HeaderMap,
    req: PaymentRequest,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let key = idempotency_key(&headers)?;
    validate(&req)?;
    let guard = svc.enter(&key)?;
    let (status, rec) = tokio::task::spawn_blocking(move || {
        let _guard = guard;
        svc.apply(kind, &key, &req)
    })
    .await
    .map_err(|e| ApiError::internal(format!("worker failed: {e}")))??;
    let replayed = status == StatusCode::OK;
    Ok((status, Json(json!({"record": rec, "replayed": replayed}))))
}

async fn charge(
    State(svc): State<Payment>,
    headers: HeaderMap,
    JsonBody(req): JsonBody<PaymentRequest>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    handle(svc, Kind::Charge, headers, req).await
}

async fn refund(
    State(svc): State<Payment>,
    headers: HeaderMap,
    JsonBody(req): JsonBody<PaymentRequest>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    handle(svc, Kind::Refund, headers, req).await
}

async fn ledger(
    State(svc): State<Payment>,
    Query(page): Query<Page>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let limit = page.limit();
    let items: Vec<(String, LedgerRecord)> = svc.db.scan(LEDGER, page.after.as_deref(), limit)?;
    let next = if items.len() == limit {
        items.last().map(|(k, _)| k.clone())
    } else {
        None
    };
    let records: Vec<LedgerRecord> = items.into_iter().map(|(_, r)| r).collect();
    Ok(Json(json!({"items": records, "next": next})))
}

/// Runs the payment role until SIGTERM.
pub async fn run(args: PaymentArgs) -> anyhow::Result<()> {
    telemetry::init_logging("payment", &args.common.node);
    let metrics = telemetry::install_metrics()?;
    crate::cli::spawn_parent_watch(args.common.watch_parent);
    std::fs::create_dir_all(&args.common.data_dir)?;
    let db = Db::open(&args.common.data_dir.join("payment.redb"))?;
    let svc = Payment {
        db,
        in_flight: Arc::new(Mutex::new(HashSet::new())),
        idempotency: !args.no_idempotency,
    };
    let app = Router::new()
        .route("/charge", post(charge))
        .route("/refund", post(refund))
        .route("/admin/ledger", get(ledger))
        .with_state(svc)
        .merge(common_routes("payment", args.common.node.clone(), metrics));
    super::serve(args.common.listen, app).await
}
