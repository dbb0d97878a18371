//! The shipping role: `POST /ship` creates a shipment and `POST /cancel` cancels one, each
//! under an idempotency key, on any node (no leader: majority quorums, token 0 in the store
//! domain `shipping`, which is not fenced).
//!
//! The carrier refuses a share of creations (`shipping_failure_rate`). The decision is a
//! function of the run's seed and the key, and it is stored under the key, so every retry of
//! a key sees the same answer. A refused creation leaves no shipment record.
//!
//! No leader is needed: the saga calls shipping once per step, in order, and every record is
//! keyed by its idempotency key, so concurrent duplicates of one key write the same record.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::common::{admin_page, now_ms, now_ns, Answer, InFlightKeys};
use super::leader::{store_unavailable, write_error};
use crate::cli::ShippingArgs;
use crate::http::{common_routes, idempotency_key, ApiError, JsonBody, Page};
use crate::ids::fnv1a64;
use crate::quorum::{Quorum, WriteOutcome};
use crate::telemetry::{self, Repeat};

const SHIP: &str = "ship/";
const REFUSED: &str = "refused/";
const CANCEL: &str = "cancel/";
/// Shipping writes carry no leader token.
const TOKEN: u64 = 0;

/// Body of `POST /ship`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShipRequest {
    /// The order.
    pub order_id: String,
}

/// Body of `POST /cancel`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    /// The order.
    pub order_id: String,
    /// The idempotency key the shipment was created under.
    pub shipment_key: String,
}

/// A shipment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shipment {
    /// The key it was created under.
    pub key: String,
    /// The order.
    pub order_id: String,
    /// `created` or `cancelled`.
    pub status: String,
    /// Dedup hits on the creation key.
    pub replays: u64,
    /// When.
    pub created_unix_ms: u64,
}

/// A refused creation or a cancellation, kept under its key for replays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// The key.
    pub key: String,
    /// The order.
    pub order_id: String,
    /// The shipment a cancellation cancelled.
    #[serde(default)]
    pub shipment_key: Option<String>,
    /// Dedup hits.
    pub replays: u64,
}

#[derive(Clone)]
struct Shipping {
    quorum: Quorum,
    in_flight: InFlightKeys,
    idempotency: bool,
    failure_rate: f64,
    seed: u64,
}

/// Whether the carrier refuses the shipment under `key`: uniform in [0, 1) per (seed, key).
pub fn carrier_refuses(seed: u64, key: &str, rate: f64) -> bool {
    let h = fnv1a64(format!("{seed}/{key}").as_bytes());
    (h as f64 / u64::MAX as f64) < rate
}

fn validate_id(what: &str, v: &str) -> Result<(), ApiError> {
    if v.trim().is_empty() || v.len() > 200 {
        return Err(ApiError::bad_request(
            "bad_order_id",
            format!("{what} must be 1 to 200 characters"),
        ));
    }
    Ok(())
}

impl Shipping {
    async fn write<T: Serialize>(&self, entries: &[(String, T)]) -> Result<(), ApiError> {
        match self.quorum.write_values(TOKEN, entries).await {
            WriteOutcome::Ok(_) => Ok(()),
            other => Err(write_error(&other, None)),
        }
    }

    async fn read2(
        &self,
        a: String,
        b: String,
    ) -> Result<(Option<serde_json::Value>, Option<serde_json::Value>), ApiError> {
        let mut recs = self
            .quorum
            .read(&[a, b])
            .await
            .map_err(store_unavailable)?
            .into_iter()
            .map(|r| r.map(|r| r.value));
        Ok((recs.next().flatten(), recs.next().flatten()))
    }

    async fn ship(&self, key: String, req: ShipRequest) -> Result<Answer, ApiError> {
        let _guard = self.in_flight.enter(&key)?;
        let reused = || {
            ApiError::unprocessable(
                "idempotency_key_reused",
                format!("key {key:?} was used for another request"),
            )
        };
        if self.idempotency {
            let (ship, refused) = self
                .read2(format!("{SHIP}{key}"), format!("{REFUSED}{key}"))
                .await?;
            if let Some(v) = ship {
                let mut s: Shipment =
                    serde_json::from_value(v).map_err(|e| ApiError::internal(e.to_string()))?;
                if s.order_id != req.order_id {
                    return Err(reused());
                }
                s.replays += 1;
                self.write(&[(format!("{SHIP}{key}"), &s)]).await?;
                telemetry::duplicate_effect("ship", Repeat::Deduplicated);
                return Ok((
                    StatusCode::OK,
                    Json(json!({"shipment": s, "replayed": true})),
                ));
            }
            if let Some(v) = refused {
                let mut d: Decision =
                    serde_json::from_value(v).map_err(|e| ApiError::internal(e.to_string()))?;
                if d.order_id != req.order_id {
                    return Err(reused());
                }
                d.replays += 1;
                self.write(&[(format!("{REFUSED}{key}"), &d)]).await?;
                return Err(refusal(&key));
            }
        }
        if carrier_refuses(self.seed, &key, self.failure_rate) {
            let d = Decision {
                key: key.clone(),
                order_id: req.order_id,
                shipment_key: None,
                replays: 0,
            };
            self.write(&[(format!("{REFUSED}{key}"), &d)]).await?;
            tracing::info!(%key, order_id = %d.order_id, "carrier refused the shipment");
            return Err(refusal(&key));
        }
        let s = Shipment {
            key: key.clone(),
            order_id: req.order_id,
            status: "created".into(),
            replays: 0,
            created_unix_ms: now_ms(),
        };
        let storage = if self.idempotency {
            format!("{SHIP}{key}")
        } else {
            let (before, _) = self
                .quorum
                .scan(&format!("{SHIP}{key}#"), None, 1)
                .await
                .map_err(store_unavailable)?;
            if !before.is_empty() {
                telemetry::duplicate_effect("ship", Repeat::Applied);
            }
            format!("{SHIP}{key}#{}", now_ns())
        };
        self.write(&[(storage, &s)]).await?;
        tracing::info!(%key, order_id = %s.order_id, "shipment created");
        Ok((
            StatusCode::CREATED,
            Json(json!({"shipment": s, "replayed": false})),
        ))
    }

    async fn cancel(&self, key: String, req: CancelRequest) -> Result<Answer, ApiError> {
        let _guard = self.in_flight.enter(&key)?;
        let (done, ship) = self
            .read2(
                format!("{CANCEL}{key}"),
                format!("{SHIP}{}", req.shipment_key),
            )
            .await?;
        let applied_again = !self.idempotency && done.is_some();
        if let (true, Some(v)) = (self.idempotency, done) {
            let mut d: Decision =
                serde_json::from_value(v).map_err(|e| ApiError::internal(e.to_string()))?;
            if d.order_id != req.order_id || d.shipment_key.as_deref() != Some(&req.shipment_key) {
                return Err(ApiError::unprocessable(
                    "idempotency_key_reused",
                    format!("key {key:?} was used for another cancellation"),
                ));
            }
            d.replays += 1;
            self.write(&[(format!("{CANCEL}{key}"), &d)]).await?;
            telemetry::duplicate_effect("cancel", Repeat::Deduplicated);
            return Ok((
                StatusCode::OK,
                Json(json!({"cancellation": d, "replayed": true})),
            ));
        }
        if applied_again {
            telemetry::duplicate_effect("cancel", Repeat::Applied);
        }
        let Some(v) = ship else {
            return Err(ApiError::unprocessable(
                "no_shipment",
                format!("no shipment was created under key {:?}", req.shipment_key),
            ));
        };
        let mut s: Shipment =
            serde_json::from_value(v).map_err(|e| ApiError::internal(e.to_string()))?;
        if s.order_id != req.order_id {
            return Err(ApiError::unprocessable(
                "shipment_order_mismatch",
                format!(
                    "shipment {:?} belongs to order {}",
                    req.shipment_key, s.order_id
                ),
            ));
        }
        s.status = "cancelled".into();
        let d = Decision {
            key: key.clone(),
            order_id: req.order_id,
            shipment_key: Some(req.shipment_key.clone()),
            replays: 0,
        };
        let entries = vec![
            (
                format!("{SHIP}{}", req.shipment_key),
                serde_json::to_value(&s).unwrap_or_default(),
            ),
            (
                format!("{CANCEL}{key}"),
                serde_json::to_value(&d).unwrap_or_default(),
            ),
        ];
        self.write(&entries).await?;
        tracing::info!(%key, shipment = %req.shipment_key, "shipment cancelled");
        Ok((
            StatusCode::CREATED,
            Json(json!({"cancellation": d, "replayed": false})),
        ))
    }
}

fn refusal(key: &str) -> ApiError {
    ApiError::unprocessable(
        "carrier_refused",
        format!("the carrier refused the shipment under key {key:?}"),
    )
}

fn respond(r: Result<Answer, ApiError>) -> Response {
    match r {
        Ok(ok) => ok.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn ship(
    State(svc): State<Shipping>,
    headers: HeaderMap,
    JsonBody(req): JsonBody<ShipRequest>,
) -> Response {
    let key = match idempotency_key(&headers)
        .and_then(|k| validate_id("order_id", &req.order_id).map(|_| k))
    {
        Ok(k) => k,
        Err(e) => return e.into_response(),
    };
    respond(svc.ship(key, req).await)
}

async fn cancel(
    State(svc): State<Shipping>,
    headers: HeaderMap,
    JsonBody(req): JsonBody<CancelRequest>,
) -> Response {
    let checked = idempotency_key(&headers).and_then(|k| {
        validate_id("order_id", &req.order_id)?;
        validate_id("shipment_key", &req.shipment_key)?;
        Ok(k)
    });
    match checked {
        Ok(key) => respond(svc.cancel(key, req).await),
        Err(e) => e.into_response(),
    }
}

async fn shipments(
    State(svc): State<Shipping>,
    Query(page): Query<Page>,
) -> Result<Json<serde_json::Value>, ApiError> {
    admin_page(&svc.quorum, SHIP, &page).await
}

/// Runs the shipping role until SIGTERM.
pub async fn run(args: ShippingArgs) -> anyhow::Result<()> {
    let boot = super::boot("shipping", &args.common)?;
    telemetry::register_duplicates(
        &["ship", "cancel"],
        &[Repeat::Deduplicated, Repeat::Applied],
    );
    let failure_rate = args
        .failure_rate
        .unwrap_or(boot.cfg.settings.shipping_failure_rate);
    if !(0.0..=1.0).contains(&failure_rate) {
        anyhow::bail!("--failure-rate {failure_rate}: must be between 0 and 1");
    }
    let (_, quorum) = super::common::store_for(&boot, "shipping")?;
    let svc = Shipping {
        quorum,
        in_flight: InFlightKeys::default(),
        idempotency: !args.no_idempotency,
        failure_rate,
        seed: boot.cfg.settings.seed,
    };
    let app = Router::new()
        .route("/ship", post(ship))
        .route("/cancel", post(cancel))
        .route("/admin/shipments", get(shipments))
        .with_state(svc)
        .merge(common_routes(
            "shipping",
            boot.cfg.node.clone(),
            boot.metrics.clone(),
        ));
    super::serve(&boot, app).await
}

#[cfg(test)]
mod tests {
    /// Proves the carrier's decision is a function of seed and key, near the configured rate.
    #[test]
    fn refusals_are_deterministic_per_key() {
        let refused = (0..10_000)
            .filter(|i| super::carrier_refuses(7, &format!("o-{i}:ship"), 0.3))
            .count();
        assert!((2700..3300).contains(&refused), "{refused} of 10000");
        assert_eq!(
            super::carrier_refuses(7, "k", 0.5),
            super::carrier_refuses(7, "k", 0.5)
        );
        assert!(!super::carrier_refuses(7, "k", 0.0));
        assert!(super::carrier_refuses(7, "k", 1.0));
    }
}
