//! The payment role: `POST /charge` and `POST /refund`, each under an idempotency key, served by
//! the elected payment leader (other nodes forward to it) over the quorum store.
//!
//! The effect (a ledger record) and its first result are one quorum write under the leader's
//! fencing token. A repeat of the key with the same payload returns the stored record, changes
//! nothing but the record's replay count, and counts a dedup hit in `duplicate_effects_total`
//! (`outcome="deduplicated"`; with `--no-idempotency` a key applied again counts `applied`).
//! The same key with another payload is refused (422); a repeat while the first is still in
//! flight gets 409. A refund needs a charge of the same order and amount.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::common::{admin_page, now_ms, now_ns, Answer, InFlightKeys};
use super::leader::{serve_routed, store_unavailable, write_error, Leader};
use crate::cli::PaymentArgs;
use crate::http::{common_routes, idempotency_key, ApiError, JsonBody, Page};
use crate::quorum::{Quorum, WriteOutcome};
use crate::telemetry::{self, Repeat};

/// Store key prefix of ledger records.
const LEDGER: &str = "ledger/";

/// Charge or refund.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Money taken.
    Charge,
    /// Money given back.
    Refund,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Charge => "charge",
            Kind::Refund => "refund",
        }
    }
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
    quorum: Quorum,
    leader: Leader,
    in_flight: InFlightKeys,
    idempotency: bool,
}

fn ledger_key(key: &str) -> String {
    format!("{LEDGER}{key}")
}

/// The idempotency key of the charge a refund of `order_id` must match.
fn charge_key_of(order_id: &str) -> String {
    crate::ids::step_key(order_id, super::order::model::StepName::Charge)
}

impl Payment {
    async fn write(
        &self,
        token: u64,
        storage_key: String,
        rec: &LedgerRecord,
    ) -> Result<(), ApiError> {
        match self.quorum.write_values(token, &[(storage_key, rec)]).await {
            WriteOutcome::Ok(_) => Ok(()),
            other => Err(write_error(&other, Some(self.leader.elector()))),
        }
    }

    /// The charge a refund of `order_id` refers to.
    async fn charge_of(&self, order_id: &str) -> Result<Option<LedgerRecord>, ApiError> {
        let key = ledger_key(&charge_key_of(order_id));
        if self.idempotency {
            return self
                .quorum
                .read_value(&key)
                .await
                .map_err(store_unavailable);
        }
        // Without idempotency charges live under fresh keys `<key>#<ns>`.
        let (recs, _) = self
            .quorum
            .scan(&key, None, 10)
            .await
            .map_err(store_unavailable)?;
        Ok(recs
            .into_iter()
            .find_map(|r| serde_json::from_value::<LedgerRecord>(r.value).ok())
            .filter(|c| c.kind == Kind::Charge))
    }

    /// Without idempotency: whether `key` already made a ledger record (under `<key>#<ns>`),
    /// so that applying it again counts as a repeat that was applied.
    async fn presented_before(&self, key: &str) -> Result<bool, ApiError> {
        let prefix = format!("{}#", ledger_key(key));
        let (recs, _) = self
            .quorum
            .scan(&prefix, None, 1)
            .await
            .map_err(store_unavailable)?;
        Ok(!recs.is_empty())
    }

    /// The decision and the write, as the leader holding `token`.
    async fn apply(
        &self,
        token: u64,
        kind: Kind,
        key: String,
        req: PaymentRequest,
    ) -> Result<Answer, ApiError> {
        let _guard = self.in_flight.enter(&key)?;
        if self.idempotency {
            let stored: Option<LedgerRecord> = self
                .quorum
                .read_value(&ledger_key(&key))
                .await
                .map_err(store_unavailable)?;
            if let Some(mut rec) = stored {
                if rec.kind != kind || rec.order_id != req.order_id || rec.amount != req.amount {
                    return Err(ApiError::unprocessable(
                        "idempotency_key_reused",
                        format!(
                            "key {key:?} was used for a {} of order {} amount {}",
                            rec.kind.label(),
                            rec.order_id,
                            rec.amount
                        ),
                    ));
                }
                rec.replays += 1;
                self.write(token, ledger_key(&key), &rec).await?;
                telemetry::duplicate_effect(kind.label(), Repeat::Deduplicated);
                tracing::info!(%key, kind = kind.label(), replays = rec.replays, "dedup hit");
                return Ok((
                    StatusCode::OK,
                    Json(json!({"record": rec, "replayed": true})),
                ));
            }
        }
        if kind == Kind::Refund {
            match self.charge_of(&req.order_id).await? {
                Some(c) if c.amount == req.amount => {}
                Some(c) => {
                    return Err(ApiError::unprocessable(
                        "refund_amount_mismatch",
                        format!(
                            "order {} was charged {}, refund asks {}",
                            req.order_id, c.amount, req.amount
                        ),
                    ))
                }
                None => {
                    return Err(ApiError::unprocessable(
                        "no_matching_charge",
                        format!("order {} has no charge to refund", req.order_id),
                    ))
                }
            }
        }
        let rec = LedgerRecord {
            key: key.clone(),
            kind,
            order_id: req.order_id.clone(),
            amount: req.amount,
            replays: 0,
            created_unix_ms: now_ms(),
        };
        // Without idempotency every request is a new effect under a fresh storage key.
        let storage_key = if self.idempotency {
            ledger_key(&key)
        } else {
            if self.presented_before(&key).await? {
                telemetry::duplicate_effect(kind.label(), Repeat::Applied);
            }
            ledger_key(&format!("{key}#{}", now_ns()))
        };
        self.write(token, storage_key, &rec).await?;
        metrics::counter!("payment_effects_total", "kind" => kind.label()).increment(1);
        tracing::info!(%key, kind = kind.label(), order_id = %rec.order_id, amount = rec.amount, "effect recorded");
        Ok((
            StatusCode::CREATED,
            Json(json!({"record": rec, "replayed": false})),
        ))
    }
}

fn validate(req: &PaymentRequest) -> Result<(), ApiError> {
    if req.order_id.trim().is_empty() || req.order_id.len() > 200 {
        return Err(ApiError::bad_request(
            "bad_order_id",
            "order_id must be 1 to 200 characters",
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

async fn handle(svc: Payment, kind: Kind, headers: HeaderMap, req: PaymentRequest) -> Response {
    let checked = idempotency_key(&headers).and_then(|k| validate(&req).map(|_| k));
    let key = match checked {
        Ok(k) => k,
        Err(e) => return e.into_response(),
    };
    let path = format!("/{}", kind.label());
    match svc.leader.route(&path, &headers, &req).await {
        Ok(route) => serve_routed(route, |token| svc.apply(token, kind, key, req)).await,
        Err(e) => e.into_response(),
    }
}

async fn charge(
    State(svc): State<Payment>,
    headers: HeaderMap,
    JsonBody(req): JsonBody<PaymentRequest>,
) -> Response {
    handle(svc, Kind::Charge, headers, req).await
}

async fn refund(
    State(svc): State<Payment>,
    headers: HeaderMap,
    JsonBody(req): JsonBody<PaymentRequest>,
) -> Response {
    handle(svc, Kind::Refund, headers, req).await
}

async fn ledger(
    State(svc): State<Payment>,
    Query(page): Query<Page>,
) -> Result<Json<serde_json::Value>, ApiError> {
    admin_page(&svc.quorum, LEDGER, &page).await
}

async fn admin_leader(State(svc): State<Payment>) -> Json<serde_json::Value> {
    svc.leader.admin()
}

/// Runs the payment role until SIGTERM.
pub async fn run(args: PaymentArgs) -> anyhow::Result<()> {
    let boot = super::boot("payment", &args.common)?;
    telemetry::register_duplicates(
        &["charge", "refund"],
        &[Repeat::Deduplicated, Repeat::Applied],
    );
    let (replicas, quorum) = super::common::store_for(&boot, "payment")?;
    let elector = super::common::elector_for(&boot, &replicas, &quorum, true);
    let leader = Leader::new(
        "payment",
        &boot.cfg,
        elector.clone(),
        boot.cfg.settings.call_timeout() * 3 / 4,
        &boot.peers,
    );
    let svc = Payment {
        quorum,
        leader,
        in_flight: InFlightKeys::default(),
        idempotency: !args.no_idempotency,
    };
    let app = Router::new()
        .route("/charge", post(charge))
        .route("/refund", post(refund))
        .route("/admin/ledger", get(ledger))
        .route("/admin/leader", get(admin_leader))
        .with_state(svc)
        .merge(common_routes(
            "payment",
            boot.cfg.node.clone(),
            boot.metrics.clone(),
        ));
    let served = super::serve(&boot, app).await;
    elector.release().await;
    served
}
