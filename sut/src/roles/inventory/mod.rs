//! The inventory role: `POST /reserve` and `POST /release` per SKU under idempotency keys,
//! `GET /stock/{sku}`, and the admin reads of reservations and stock.
//!
//! Two consistency models, chosen by `inventory_mode`:
//! - `linearizable`: an elected leader (other nodes forward to it) serializes the operations of
//!   each SKU and writes the SKU's record with its fencing token through majority quorums, so
//!   stock never goes below zero and a deposed leader's late writes are refused.
//! - `eventual`: every node applies locally with W = R = 1 (the write reaches the other
//!   replicas in the background) and no token: it writes token 0 in the store domain
//!   `inventory-eventual`, which is not fenced, so no write there is ever refused as stale. Two nodes can both sell the last unit: that is
//!   the point of offering it. Reservations are also kept as records of their own there, so an
//!   oversell shows up in the admin reads instead of being overwritten.

pub mod sku;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use tokio::sync::Mutex;

use self::sku::{ReleaseRequest, Reservation, ReserveRequest, SkuState};
use super::common::{admin_page, now_ns, Answer, InFlightKeys};
use super::leader::{serve_routed, store_unavailable, write_error, Leader, Route};
use crate::cli::InventoryArgs;
use crate::config::InventoryMode;
use crate::http::{common_routes, idempotency_key, ApiError, JsonBody, Page};
use crate::quorum::{Quorum, WriteOutcome};
use crate::telemetry::{self, Repeat};

const SKU: &str = "sku/";
const MIRROR: &str = "resv/";

enum Op {
    Reserve(ReserveRequest),
    Release(ReleaseRequest),
}

impl Op {
    fn sku(&self) -> &str {
        match self {
            Op::Reserve(r) => &r.sku,
            Op::Release(r) => &r.sku,
        }
    }
}

#[derive(Clone)]
struct Inventory {
    quorum: Quorum,
    leader: Option<Leader>,
    in_flight: InFlightKeys,
    idempotency: bool,
    initial: Arc<BTreeMap<String, i64>>,
    /// One lock per configured SKU: operations on a SKU are read-modify-write.
    locks: Arc<BTreeMap<String, Arc<Mutex<()>>>>,
}

fn sku_key(sku: &str) -> String {
    format!("{SKU}{sku}")
}

impl Inventory {
    fn eventual(&self) -> bool {
        self.leader.is_none()
    }

    fn check(&self, key_sku: &str, qty: i64, order_id: &str) -> Result<(), ApiError> {
        if !self.initial.contains_key(key_sku) {
            return Err(ApiError::unprocessable(
                "unknown_sku",
                format!("unknown sku {key_sku:?}"),
            ));
        }
        if qty <= 0 {
            return Err(ApiError::bad_request(
                "bad_quantity",
                format!("qty must be at least 1, got {qty}"),
            ));
        }
        if order_id.len() > 200 {
            return Err(ApiError::bad_request(
                "bad_order_id",
                "order_id is longer than 200 characters",
            ));
        }
        Ok(())
    }

    /// The SKU's state (fresh if never written); in eventual mode merged with the mirrored
    /// reservation `mirror`, which a concurrent write may have dropped from the SKU record.
    async fn load(&self, sku: &str, mirror: Option<&str>) -> Result<SkuState, ApiError> {
        let mut keys = vec![sku_key(sku)];
        if let (true, Some(m)) = (self.eventual(), mirror) {
            keys.push(format!("{MIRROR}{m}"));
        }
        let recs = self.quorum.read(&keys).await.map_err(store_unavailable)?;
        let mut state = match recs.first().cloned().flatten() {
            Some(r) => serde_json::from_value(r.value)
                .map_err(|e| ApiError::internal(format!("sku {sku}: unreadable record: {e}")))?,
            None => SkuState::fresh(sku, self.initial.get(sku).copied().unwrap_or(0)),
        };
        if let Some(Some(r)) = recs.get(1) {
            if let Ok(resv) = serde_json::from_value::<Reservation>(r.value.clone()) {
                let k = r.key.trim_start_matches(MIRROR).to_owned();
                state.reservations.entry(k).or_insert(resv);
            }
        }
        Ok(state)
    }

    async fn apply(&self, token: u64, key: String, op: Op) -> Result<Answer, ApiError> {
        let _guard = self.in_flight.enter(&key)?;
        let lock = self.locks.get(op.sku()).cloned().ok_or_else(|| {
            ApiError::unprocessable("unknown_sku", format!("unknown sku {:?}", op.sku()))
        })?;
        let _sku = lock.lock().await;
        let storage_key = if self.idempotency {
            key.clone()
        } else {
            format!("{key}#{}", now_ns())
        };
        let (mirror_of, decided, state) = match &op {
            Op::Reserve(req) => {
                let mut state = self.load(&req.sku, None).await?;
                let d = state.reserve(&key, &storage_key, req, self.idempotency)?;
                (Some(storage_key.clone()), d, state)
            }
            Op::Release(req) => {
                let mut state = self.load(&req.sku, req.reservation.as_deref()).await?;
                let d = state.release(&key, &storage_key, req, self.idempotency)?;
                (req.reservation.clone(), d, state)
            }
        };
        let (status, body, changed) = decided;
        if changed {
            let mut entries = vec![(
                sku_key(&state.sku),
                serde_json::to_value(&state).unwrap_or_default(),
            )];
            if let (true, Some(m)) = (self.eventual(), mirror_of) {
                if let Some(r) = state.reservations.get(&m) {
                    entries.push((
                        format!("{MIRROR}{m}"),
                        serde_json::to_value(r).unwrap_or_default(),
                    ));
                }
            }
            match self.quorum.write(token, entries).await {
                WriteOutcome::Ok(_) => {}
                other => {
                    return Err(write_error(
                        &other,
                        self.leader.as_ref().map(Leader::elector),
                    ))
                }
            }
        }
        if status == StatusCode::OK {
            telemetry::duplicate_effect("inventory", Repeat::Deduplicated);
        }
        if !self.idempotency && status == StatusCode::CREATED {
            // Without idempotency every request is stored under `<key>#<ns>`: another record
            // under the same key means this one applied the key again.
            let prefix = format!("{key}#");
            let made = state
                .reservations
                .keys()
                .chain(state.releases.keys())
                .filter(|k| k.starts_with(&prefix))
                .count();
            if made > 1 {
                telemetry::duplicate_effect("inventory", Repeat::Applied);
            }
        }
        Ok((status, Json(body)))
    }

    async fn route<B: serde::Serialize>(
        &self,
        path: &str,
        headers: &HeaderMap,
        body: &B,
    ) -> Result<Route, ApiError> {
        match &self.leader {
            Some(l) => l.route(path, headers, body).await,
            None => Ok(Route::Local(0)),
        }
    }
}

async fn reserve(
    State(svc): State<Inventory>,
    headers: HeaderMap,
    JsonBody(req): JsonBody<ReserveRequest>,
) -> Response {
    let checked = idempotency_key(&headers)
        .and_then(|k| svc.check(&req.sku, req.qty, &req.order_id).map(|_| k));
    let key = match checked {
        Ok(k) => k,
        Err(e) => return e.into_response(),
    };
    match svc.route("/reserve", &headers, &req).await {
        Ok(route) => serve_routed(route, |t| svc.apply(t, key, Op::Reserve(req))).await,
        Err(e) => e.into_response(),
    }
}

async fn release(
    State(svc): State<Inventory>,
    headers: HeaderMap,
    JsonBody(req): JsonBody<ReleaseRequest>,
) -> Response {
    let checked = idempotency_key(&headers)
        .and_then(|k| svc.check(&req.sku, req.qty, &req.order_id).map(|_| k));
    let key = match checked {
        Ok(k) => k,
        Err(e) => return e.into_response(),
    };
    match svc.route("/release", &headers, &req).await {
        Ok(route) => serve_routed(route, |t| svc.apply(t, key, Op::Release(req))).await,
        Err(e) => e.into_response(),
    }
}

async fn stock(
    State(svc): State<Inventory>,
    Path(sku): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    if !svc.initial.contains_key(&sku) {
        return Err(ApiError::not_found(format!("unknown sku {sku:?}")));
    }
    let s = svc.load(&sku, None).await?;
    Ok(Json(
        json!({"sku": s.sku, "available": s.available, "initial": s.initial}),
    ))
}

/// Every SKU's state, configured SKUs that were never written included.
async fn all_skus(svc: &Inventory) -> Result<BTreeMap<String, SkuState>, ApiError> {
    let recs = svc
        .quorum
        .scan_all(SKU, 1000)
        .await
        .map_err(store_unavailable)?;
    let mut out: BTreeMap<String, SkuState> = svc
        .initial
        .iter()
        .map(|(s, n)| (s.clone(), SkuState::fresh(s, *n)))
        .collect();
    for r in recs {
        if let Ok(s) = serde_json::from_value::<SkuState>(r.value) {
            out.insert(s.sku.clone(), s);
        }
    }
    Ok(out)
}

/// Items after the cursor `page.after`, at most `page.limit()`, with the next cursor.
fn paginate(items: Vec<(String, serde_json::Value)>, page: &Page) -> Json<serde_json::Value> {
    let limit = page.limit();
    let mut rest = items
        .into_iter()
        .filter(|(c, _)| page.after.as_deref().is_none_or(|a| c.as_str() > a))
        .peekable();
    let mut out = Vec::new();
    let mut last = None;
    while out.len() < limit {
        let Some((c, v)) = rest.next() else { break };
        out.push(v);
        last = Some(c);
    }
    let next = if rest.peek().is_some() { last } else { None };
    Json(json!({"items": out, "next": next}))
}

async fn reservations(
    State(svc): State<Inventory>,
    Query(page): Query<Page>,
) -> Result<Json<serde_json::Value>, ApiError> {
    if svc.eventual() {
        return admin_page(&svc.quorum, MIRROR, &page).await;
    }
    let items = all_skus(&svc)
        .await?
        .into_values()
        .flat_map(|s| {
            s.reservations.into_iter().map(move |(k, r)| {
                (
                    format!("{}/{k}", s.sku),
                    serde_json::to_value(r).unwrap_or_default(),
                )
            })
        })
        .collect();
    Ok(paginate(items, &page))
}

async fn stock_all(
    State(svc): State<Inventory>,
    Query(page): Query<Page>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let items = all_skus(&svc)
        .await?
        .into_values()
        .map(|s| {
            (
                s.sku.clone(),
                json!({"sku": s.sku, "available": s.available, "initial": s.initial}),
            )
        })
        .collect();
    Ok(paginate(items, &page))
}

async fn admin_leader(State(svc): State<Inventory>) -> Result<Json<serde_json::Value>, ApiError> {
    match &svc.leader {
        Some(l) => Ok(l.admin()),
        None => Err(ApiError::not_found(
            "inventory runs in eventual mode: no leader",
        )),
    }
}

/// The store domain of the inventory in `mode`: in eventual mode it is written without a
/// leader, under token 0, in a domain that is not fenced (docs/pipeline.md).
fn domain_of(mode: InventoryMode) -> &'static str {
    match mode {
        InventoryMode::Linearizable => "inventory",
        InventoryMode::Eventual => "inventory-eventual",
    }
}

/// Runs the inventory role until SIGTERM.
pub async fn run(mut args: InventoryArgs) -> anyhow::Result<()> {
    let mut boot = super::boot("inventory", &args.common)?;
    telemetry::register_duplicates(&["inventory"], &[Repeat::Deduplicated, Repeat::Applied]);
    if let Some(mode) = args.inventory_mode.take() {
        boot.cfg.settings.inventory_mode = mode;
    }
    let mode = boot.cfg.settings.inventory_mode;
    let (replicas, quorum) = super::common::store_in(&boot, "inventory", domain_of(mode))?;
    let elector = (mode == InventoryMode::Linearizable)
        .then(|| super::common::elector_for(&boot, &replicas, &quorum, true));
    let leader = elector.clone().map(|e| {
        Leader::new(
            "inventory",
            &boot.cfg,
            e,
            boot.cfg.settings.call_timeout() * 3 / 4,
            &boot.peers,
        )
    });
    tracing::info!(?mode, quorum = ?quorum.spec(), "inventory mode");
    let initial = boot.cfg.settings.initial_stock.clone();
    let locks = initial
        .keys()
        .map(|s| (s.clone(), Arc::new(Mutex::new(()))))
        .collect();
    let svc = Inventory {
        quorum,
        leader,
        in_flight: InFlightKeys::default(),
        idempotency: !args.no_idempotency,
        initial: Arc::new(initial),
        locks: Arc::new(locks),
    };
    let app = Router::new()
        .route("/reserve", post(reserve))
        .route("/release", post(release))
        .route("/stock/{sku}", get(stock))
        .route("/admin/reservations", get(reservations))
        .route("/admin/stock", get(stock_all))
        .route("/admin/leader", get(admin_leader))
        .with_state(svc)
        .merge(common_routes(
            "inventory",
            boot.cfg.node.clone(),
            boot.metrics.clone(),
        ));
    let served = super::serve(&boot, app).await;
    if let Some(e) = elector {
        e.release().await;
    }
    served
}
