//! The shipping role: `POST /ship` creates a shipment and `POST /cancel` cancels one, each
//! under an idempotency key, served by the elected shipping leader (other nodes forward to it)
//! through the role's effect ledger ([`super::effect`]), in the fenced store domain `shipping`.
//!
//! An order's shipping is one unit, `ship/<order_id>`: its shipments and cancellations. The
//! carrier refuses a share of creations (`shipping_failure_rate`); the decision is a function
//! of the run's seed and the key, and it is stored under the key, so every retry of a key sees
//! the same answer. A refused creation leaves no shipment. A cancellation names the shipment's
//! key; with idempotency a shipment is cancelled once (another key cancelling a cancelled
//! shipment is 422 `already_cancelled`).

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::common::paginate;
use super::effect::{Decision, Effects, Entries, Entry, Kind, Ledger, Unit};
use super::leader::{serve_routed, store_unavailable, Leader};
use crate::cli::ShippingArgs;
use crate::http::{common_routes, idempotency_key, ApiError, JsonBody, Page};
use crate::ids::fnv1a64;

const UNITS: &str = "ship/";

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

/// A request to the shipping ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Request {
    /// Cancel (listed first: it has the extra field).
    Cancel(CancelRequest),
    /// Create.
    Ship(ShipRequest),
}

impl Request {
    fn order_id(&self) -> &str {
        match self {
            Request::Cancel(c) => &c.order_id,
            Request::Ship(s) => &s.order_id,
        }
    }
}

/// A shipment's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShipmentStatus {
    /// Live.
    Created,
    /// Cancelled by a compensation.
    Cancelled,
}

/// A shipment, in the shape of the checker's `ShipmentRecord`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shipment {
    /// The key it was created under.
    pub key: String,
    /// The order.
    pub order_id: String,
    /// Live or cancelled.
    pub status: ShipmentStatus,
    /// Dedup hits on the creation key.
    pub replays: u64,
    /// When.
    pub created_unix_ms: u64,
}

/// An order's shipping.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShippingUnit {
    /// The order.
    pub order_id: String,
    /// Shipments by storage key.
    pub shipments: BTreeMap<String, ShipmentStatus>,
    /// Creations, cancellations and stored refusals by storage key.
    pub entries: Entries,
}

impl Unit for ShippingUnit {
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

/// Whether the carrier refuses the shipment under `key`: uniform in [0, 1) per (seed, key).
pub fn carrier_refuses(seed: u64, key: &str, rate: f64) -> bool {
    let h = fnv1a64(format!("{seed}/{key}").as_bytes());
    (h as f64 / u64::MAX as f64) < rate
}

/// The shipments of a unit, with their cursors.
pub fn shipments(unit: &ShippingUnit) -> Vec<(String, Shipment)> {
    unit.shipments
        .iter()
        .filter_map(|(sk, status)| {
            let e = unit.entries.get(sk)?;
            Some((
                format!("{}/{sk}", unit.order_id),
                Shipment {
                    key: e.key.clone(),
                    order_id: unit.order_id.clone(),
                    status: *status,
                    replays: e.replays,
                    created_unix_ms: e.at_unix_ms,
                },
            ))
        })
        .collect()
}

#[derive(Clone)]
struct Shipping {
    ledger: Ledger,
    leader: Leader,
    failure_rate: f64,
    seed: u64,
}

impl Shipping {
    fn cancel(&self, unit: &mut ShippingUnit, req: &CancelRequest) -> Result<Decision, ApiError> {
        // The shipment under its key (several without idempotency: the first live one).
        let found = unit
            .shipments
            .iter_mut()
            .filter(|(sk, _)| {
                unit.entries
                    .get(*sk)
                    .is_some_and(|e| e.key == req.shipment_key)
            })
            .min_by_key(|(_, st)| **st == ShipmentStatus::Cancelled);
        let Some((_, status)) = found else {
            return Err(ApiError::unprocessable(
                "no_shipment",
                format!(
                    "order {} has no shipment created under key {:?}",
                    req.order_id, req.shipment_key
                ),
            ));
        };
        if self.ledger.idempotency() && *status == ShipmentStatus::Cancelled {
            return Err(ApiError::unprocessable(
                "already_cancelled",
                format!("shipment {:?} is already cancelled", req.shipment_key),
            ));
        }
        *status = ShipmentStatus::Cancelled;
        Ok(Decision::Applied {
            names: Some(req.shipment_key.clone()),
        })
    }
}

impl Effects for Shipping {
    type Unit = ShippingUnit;
    type Request = Request;

    fn unit_key(&self, req: &Request) -> String {
        unit_key(req.order_id())
    }

    async fn load(&self, _: &str, req: &Request) -> Result<ShippingUnit, ApiError> {
        let stored: Option<ShippingUnit> = self
            .ledger
            .quorum()
            .read_value(&unit_key(req.order_id()))
            .await
            .map_err(store_unavailable)?;
        Ok(stored.unwrap_or_else(|| ShippingUnit {
            order_id: req.order_id().to_owned(),
            ..ShippingUnit::default()
        }))
    }

    fn decide(
        &self,
        unit: &mut ShippingUnit,
        _kind: Kind,
        key: &str,
        storage_key: &str,
        req: &Request,
    ) -> Result<Decision, ApiError> {
        match req {
            Request::Cancel(c) => self.cancel(unit, c),
            Request::Ship(_) => {
                if carrier_refuses(self.seed, key, self.failure_rate) {
                    return Ok(Decision::Refused(ApiError::unprocessable(
                        "carrier_refused",
                        format!("the carrier refused the shipment under key {key:?}"),
                    )));
                }
                unit.shipments
                    .insert(storage_key.to_owned(), ShipmentStatus::Created);
                Ok(Decision::Applied { names: None })
            }
        }
    }

    fn writes(&self, unit: &ShippingUnit, _: &str, req: &Request) -> Vec<(String, Value)> {
        vec![(
            unit_key(req.order_id()),
            serde_json::to_value(unit).unwrap_or_default(),
        )]
    }

    fn view(&self, unit: &ShippingUnit, storage_key: &str, entry: &Entry) -> Value {
        match entry.kind {
            Kind::Cancel => json!({"cancellation": {
                "key": entry.key, "order_id": unit.order_id, "shipment_key": entry.names,
            }}),
            _ => json!({"shipment": {
                "key": entry.key, "order_id": unit.order_id,
                "status": unit.shipments.get(storage_key),
            }}),
        }
    }
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

async fn handle(svc: Shipping, kind: Kind, headers: HeaderMap, req: Request) -> Response {
    let checked = idempotency_key(&headers).and_then(|k| {
        validate_id("order_id", req.order_id())?;
        if let Request::Cancel(c) = &req {
            validate_id("shipment_key", &c.shipment_key)?;
        }
        Ok(k)
    });
    let key = match checked {
        Ok(k) => k,
        Err(e) => return e.into_response(),
    };
    let path = match kind {
        Kind::Cancel => "/cancel",
        _ => "/ship",
    };
    match svc.leader.route(path, &headers, &req).await {
        Ok(route) => {
            serve_routed(route, move |token| async move {
                svc.ledger.run(&svc, token, kind, &key, &req).await
            })
            .await
        }
        Err(e) => e.into_response(),
    }
}

async fn ship(
    State(svc): State<Shipping>,
    headers: HeaderMap,
    JsonBody(req): JsonBody<ShipRequest>,
) -> Response {
    handle(svc, Kind::Ship, headers, Request::Ship(req)).await
}

async fn cancel(
    State(svc): State<Shipping>,
    headers: HeaderMap,
    JsonBody(req): JsonBody<CancelRequest>,
) -> Response {
    handle(svc, Kind::Cancel, headers, Request::Cancel(req)).await
}

async fn all_shipments(State(svc): State<Shipping>, Query(page): Query<Page>) -> Response {
    let units = match svc.ledger.quorum().scan_all(UNITS, 500).await {
        Ok(u) => u,
        Err(e) => return store_unavailable(e).into_response(),
    };
    let items = units
        .into_iter()
        .filter_map(|r| serde_json::from_value::<ShippingUnit>(r.value).ok())
        .flat_map(|u| shipments(&u))
        .map(|(c, s)| (c, serde_json::to_value(s).unwrap_or_default()))
        .collect();
    paginate(items, &page).into_response()
}

async fn admin_leader(State(svc): State<Shipping>) -> Json<Value> {
    svc.leader.admin()
}

/// Runs the shipping role until SIGTERM.
pub async fn run(args: ShippingArgs) -> anyhow::Result<()> {
    let boot = super::boot("shipping", &args.common)?;
    Kind::register(&[Kind::Ship, Kind::Cancel]);
    let failure_rate = args
        .failure_rate
        .unwrap_or(boot.cfg.settings.shipping_failure_rate);
    if !(0.0..=1.0).contains(&failure_rate) {
        anyhow::bail!("--failure-rate {failure_rate}: must be between 0 and 1");
    }
    let (replicas, quorum) = super::common::store_for(&boot, "shipping")?;
    let elector = super::common::elector_for(&boot, &replicas, &quorum, true);
    let leader = Leader::new(
        "shipping",
        &boot.cfg,
        elector.clone(),
        boot.cfg.settings.call_timeout() * 3 / 4,
        &boot.peers,
    );
    let svc = Shipping {
        ledger: Ledger::new(quorum, Some(elector.clone()), !args.no_idempotency),
        leader,
        failure_rate,
        seed: boot.cfg.settings.seed,
    };
    let app = Router::new()
        .route("/ship", post(ship))
        .route("/cancel", post(cancel))
        .route("/admin/shipments", get(all_shipments))
        .route("/admin/leader", get(admin_leader))
        .with_state(svc)
        .merge(common_routes(
            "shipping",
            boot.cfg.node.clone(),
            boot.metrics.clone(),
        ));
    let served = super::serve(&boot, app).await;
    elector.release().await;
    served
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
