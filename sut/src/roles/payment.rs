//! The payment role: `POST /charge` and `POST /refund`, each under an idempotency key, served by
//! the elected payment leader (other nodes forward to it) through the role's effect ledger
//! ([`super::effect`]: one key, one effect, replays and reuse).
//!
//! An order's payments are one unit, `pay/<order_id>`: its charges and refunds side by side, so
//! that a refund is decided on the charges it must match in the same versioned write. A refund
//! needs a charge of the same order and amount and names it; with idempotency a charge is
//! refunded once (a refund under another key of a refunded charge is 422 `already_refunded`).
//! Amounts are 1 to [`MAX_AMOUNT_CENTS`](crate::limits::MAX_AMOUNT_CENTS) cents.

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::common::paginate;
use super::effect::{
    applied_of, count_arrival, Decision, Effects, Entries, Entry, Kind, Ledger, Unit,
};
use super::leader::{serve_routed, store_unavailable, Leader, FORWARDED_BY};
use crate::cli::PaymentArgs;
use crate::http::{common_routes, idempotency_key, ApiError, JsonBody, Page};
use crate::quorum::Quorum;

/// Store key prefix of payment units.
const UNITS: &str = "pay/";

/// Body of a charge or refund.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentRequest {
    /// The order.
    pub order_id: String,
    /// Cents, 1 to [`MAX_AMOUNT_CENTS`](crate::limits::MAX_AMOUNT_CENTS).
    pub amount: i64,
}

/// One effect in the ledger, in the shape of the checker's `PaymentRecord`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerRecord {
    /// Idempotency key it was made under.
    pub key: String,
    /// `charge` or `refund`.
    pub kind: Kind,
    /// The order.
    pub order_id: String,
    /// Cents.
    pub amount: i64,
    /// The key of the charge a refund gives back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charge: Option<String>,
    /// Times the key was presented again after the first.
    pub replays: u64,
    /// When it was made.
    pub created_unix_ms: u64,
}

/// An order's payments.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PaymentUnit {
    /// The order.
    pub order_id: String,
    /// Its charges and refunds (and stored refusals) by storage key.
    pub entries: Entries,
}

impl Unit for PaymentUnit {
    fn entries(&self) -> &Entries {
        &self.entries
    }
    fn entries_mut(&mut self) -> &mut Entries {
        &mut self.entries
    }
}

fn unit_key(order_id: &str) -> String {
    format!("{UNITS}{order_id}")
}

fn record(entry: &Entry) -> Option<LedgerRecord> {
    let req: PaymentRequest = serde_json::from_value(entry.request.clone()).ok()?;
    Some(LedgerRecord {
        key: entry.key.clone(),
        kind: entry.kind,
        order_id: req.order_id,
        amount: req.amount,
        charge: entry.names.clone(),
        replays: entry.replays,
        created_unix_ms: entry.at_unix_ms,
    })
}

/// The ledger records of a unit: its applied charges and refunds.
pub fn records(unit: &PaymentUnit) -> Vec<(String, LedgerRecord)> {
    unit.entries
        .iter()
        .filter(|(_, e)| e.applied())
        .filter_map(|(k, e)| record(e).map(|r| (format!("{}/{k}", unit.order_id), r)))
        .collect()
}

#[derive(Clone)]
struct Payment {
    ledger: Ledger,
    leader: Leader,
}

impl Payment {
    /// The charge a refund of `req` gives back: the order's charge of that amount.
    fn charge_for(&self, unit: &PaymentUnit, req: &PaymentRequest) -> Result<String, ApiError> {
        let charges: Vec<LedgerRecord> = applied_of(&unit.entries, Kind::Charge)
            .filter_map(|(_, e)| record(e))
            .collect();
        if let Some(c) = charges.iter().find(|c| c.amount == req.amount) {
            return Ok(c.key.clone());
        }
        match charges.first() {
            Some(c) => Err(ApiError::unprocessable(
                "refund_amount_mismatch",
                format!(
                    "order {} was charged {}, refund asks {}",
                    req.order_id, c.amount, req.amount
                ),
            )),
            None => Err(ApiError::unprocessable(
                "no_matching_charge",
                format!("order {} has no charge to refund", req.order_id),
            )),
        }
    }
}

impl Effects for Payment {
    type Unit = PaymentUnit;
    type Request = PaymentRequest;

    fn unit_key(&self, req: &PaymentRequest) -> String {
        unit_key(&req.order_id)
    }

    async fn load(&self, _: &str, req: &PaymentRequest) -> Result<PaymentUnit, ApiError> {
        let stored: Option<PaymentUnit> = self
            .ledger
            .quorum()
            .read_value(&unit_key(&req.order_id))
            .await
            .map_err(store_unavailable)?;
        Ok(stored.unwrap_or_else(|| PaymentUnit {
            order_id: req.order_id.clone(),
            entries: Entries::new(),
        }))
    }

    fn decide(
        &self,
        unit: &mut PaymentUnit,
        kind: Kind,
        _key: &str,
        _storage_key: &str,
        req: &PaymentRequest,
    ) -> Result<Decision, ApiError> {
        if kind == Kind::Charge {
            return Ok(Decision::Applied { names: None });
        }
        let charge = self.charge_for(unit, req)?;
        let refunded_by = applied_of(&unit.entries, Kind::Refund)
            .find(|(_, e)| e.names.as_deref() == Some(charge.as_str()))
            .map(|(_, e)| e.key.clone());
        if let (true, Some(other)) = (self.ledger.idempotency(), refunded_by) {
            return Err(ApiError::unprocessable(
                "already_refunded",
                format!("charge {charge:?} was refunded under key {other:?}"),
            ));
        }
        Ok(Decision::Applied {
            names: Some(charge),
        })
    }

    fn writes(
        &self,
        unit: &PaymentUnit,
        _storage_key: &str,
        req: &PaymentRequest,
    ) -> Vec<(String, Value)> {
        vec![(
            unit_key(&req.order_id),
            serde_json::to_value(unit).unwrap_or_default(),
        )]
    }

    fn view(&self, _unit: &PaymentUnit, _storage_key: &str, entry: &Entry) -> Value {
        serde_json::json!({ "record": record(entry) })
    }
}

fn validate(req: &PaymentRequest) -> Result<(), ApiError> {
    if req.order_id.trim().is_empty() || req.order_id.len() > 200 {
        return Err(ApiError::bad_request(
            "bad_order_id",
            "order_id must be 1 to 200 characters",
        ));
    }
    crate::limits::amount(req.amount)
}

async fn handle(svc: Payment, kind: Kind, headers: HeaderMap, req: PaymentRequest) -> Response {
    let checked = idempotency_key(&headers).and_then(|k| validate(&req).map(|_| k));
    let key = match checked {
        Ok(k) => k,
        Err(e) => return e.into_response(),
    };
    if !headers.contains_key(FORWARDED_BY) {
        count_arrival(kind, &key);
    }
    let path = format!("/{}", kind.label());
    match svc.leader.route(&path, &headers, &req).await {
        Ok(route) => {
            serve_routed(route, move |token| async move {
                svc.ledger.run(&svc, token, kind, &key, &req).await
            })
            .await
        }
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

/// Every ledger record, flattened from the units.
async fn all_records(quorum: &Quorum) -> Result<Vec<(String, Value)>, ApiError> {
    let units = quorum
        .scan_all(UNITS, 500)
        .await
        .map_err(store_unavailable)?;
    Ok(units
        .into_iter()
        .filter_map(|r| serde_json::from_value::<PaymentUnit>(r.value).ok())
        .flat_map(|u| records(&u))
        .map(|(c, r)| (c, serde_json::to_value(r).unwrap_or_default()))
        .collect())
}

async fn ledger(
    State(svc): State<Payment>,
    Query(page): Query<Page>,
) -> Result<Json<Value>, ApiError> {
    Ok(paginate(all_records(svc.ledger.quorum()).await?, &page))
}

async fn admin_leader(State(svc): State<Payment>) -> Json<Value> {
    svc.leader.admin()
}

/// Runs the payment role until SIGTERM.
pub async fn run(args: PaymentArgs) -> anyhow::Result<()> {
    let boot = super::boot("payment", &args.common)?;
    Kind::register(&[Kind::Charge, Kind::Refund]);
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
        ledger: Ledger::new(quorum, Some(elector.clone()), !args.no_idempotency),
        leader,
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
