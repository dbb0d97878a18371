//! The inventory role: `POST /reserve`, `POST /release` and `POST /commit` per SKU under
//! idempotency keys, through the role's effect ledger ([`super::effect`]); `GET /stock/{sku}`;
//! and the admin reads of reservations, releases and stock. A release or commit names the
//! reservation it acts on ([`sku`] has the rules: stock stays between 0 and the initial stock).
//! In linearizable mode (with idempotency) settled reservations leave the SKU record for archive
//! records of their own ([`archive`]), so that the record every request reads and writes holds
//! the live reservations only.
//!
//! Two consistency models, chosen by `inventory_mode`:
//! - `linearizable`: an elected leader (other nodes forward to it) serializes the operations of
//!   each SKU and writes the SKU's record with its fencing token through majority quorums, so
//!   stock never goes below zero and a deposed leader's late writes are refused.
//! - `eventual`: every node applies locally with W = R = 1 (the write reaches the other
//!   replicas in the background) and no token: it writes token 0 in the store domain
//!   `inventory-eventual`, which is not fenced, so no write there is ever refused as stale.
//!   Two nodes can both sell the last unit: that is the point of offering it. Reservations are
//!   also kept as records of their own there, so an oversell shows up in the admin reads
//!   instead of being overwritten. One key, one effect does not hold across nodes there.

pub mod archive;
pub mod sku;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use self::archive::{archive_key, Copied, Settled, ARCHIVE};
use self::sku::{Request, Reservation, ReserveRequest, SettleRequest, SkuState};
use super::common::{admin_page, paginate};
use super::effect::{Decision, Effects, Entry, Kind, Ledger};
use super::leader::{serve_routed, store_unavailable, Leader, Route};
use crate::cli::InventoryArgs;
use crate::config::InventoryMode;
use crate::http::{common_routes, idempotency_key, ApiError, JsonBody, Page};

const SKU: &str = "sku/";
const MIRROR: &str = "resv/";
/// SKU records per scan page: each may be large (up to [`super::effect::MAX_ENTRIES_PER_UNIT`]
/// entries), so pages are short.
const SKU_SCAN_PAGE: usize = 16;

#[derive(Clone)]
struct Inventory {
    ledger: Ledger,
    leader: Option<Leader>,
    initial: Arc<BTreeMap<String, i64>>,
    copied: Copied,
}

fn sku_key(sku: &str) -> String {
    format!("{SKU}{sku}")
}

impl Inventory {
    fn eventual(&self) -> bool {
        self.leader.is_none()
    }

    /// Whether settled reservations move to archive records ([`archive`]): linearizable mode
    /// with idempotency on.
    fn archives(&self) -> bool {
        !self.eventual() && self.ledger.idempotency()
    }

    fn check(&self, sku: &str, qty: i64, order_id: &str) -> Result<(), ApiError> {
        if !self.initial.contains_key(sku) {
            return Err(ApiError::unprocessable(
                "unknown_sku",
                format!("unknown sku {sku:?}"),
            ));
        }
        crate::limits::quantity(&format!("sku {sku}"), qty)?;
        if order_id.len() > 200 {
            return Err(ApiError::bad_request(
                "bad_order_id",
                "order_id is longer than 200 characters",
            ));
        }
        Ok(())
    }

    /// The SKU's state (fresh if never written), merged with the records of `about`: in
    /// eventual mode the mirrored reservations (which a concurrent write may have dropped from
    /// the SKU record); when archiving, the archive records of those storage keys.
    async fn load_sku(&self, sku: &str, about: &[&str]) -> Result<SkuState, ApiError> {
        let mut keys = vec![sku_key(sku)];
        if self.eventual() {
            keys.extend(about.iter().map(|m| format!("{MIRROR}{m}")));
        } else if self.archives() {
            keys.extend(about.iter().map(|k| archive_key(sku, k)));
        }
        let recs = self
            .ledger
            .quorum()
            .read(&keys)
            .await
            .map_err(store_unavailable)?;
        let mut state = match recs.first().cloned().flatten() {
            Some(r) => serde_json::from_value(r.value)
                .map_err(|e| ApiError::internal(format!("sku {sku}: unreadable record: {e}")))?,
            None => SkuState::fresh(sku, self.initial.get(sku).copied().unwrap_or(0)),
        };
        for r in recs.into_iter().skip(1).flatten() {
            if self.archives() {
                if let Ok(done) = serde_json::from_value::<Settled>(r.value) {
                    state.merge_archived(done);
                }
            } else if let Ok(resv) = serde_json::from_value::<Reservation>(r.value) {
                let k = r.key.trim_start_matches(MIRROR).to_owned();
                state.reservations.entry(k).or_insert(resv);
            }
        }
        Ok(state)
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

impl Effects for Inventory {
    type Unit = SkuState;
    type Request = Request;

    fn unit_key(&self, req: &Request) -> String {
        sku_key(req.sku())
    }

    /// The SKU's state with the records the request is about: in eventual mode the mirror of
    /// the reservation a release or commit names; when archiving, the archive records of its
    /// own key and of the reservation it names.
    async fn load(&self, key: &str, req: &Request) -> Result<SkuState, ApiError> {
        let named = match req {
            Request::Settle(r) => r.reservation.as_deref(),
            Request::Reserve(_) => None,
        };
        let about: Vec<&str> = if self.archives() {
            std::iter::once(key)
                .chain(named.filter(|n| *n != key))
                .collect()
        } else {
            named.into_iter().collect()
        };
        self.load_sku(req.sku(), &about).await
    }

    fn decide(
        &self,
        unit: &mut SkuState,
        kind: Kind,
        key: &str,
        storage_key: &str,
        req: &Request,
    ) -> Result<Decision, ApiError> {
        unit.decide(kind, key, storage_key, req, self.ledger.idempotency())
    }

    fn writes(&self, unit: &SkuState, _: &str, _: &Request) -> Vec<(String, Value)> {
        if self.archives() {
            return self.copied.plan(unit).writes(unit, sku_key(&unit.sku));
        }
        let mut entries = vec![(
            sku_key(&unit.sku),
            serde_json::to_value(unit).unwrap_or_default(),
        )];
        if let (true, Some(m)) = (self.eventual(), &unit.touched) {
            if let Some(r) = unit.reservations.get(m) {
                entries.push((
                    format!("{MIRROR}{m}"),
                    serde_json::to_value(r).unwrap_or_default(),
                ));
            }
        }
        entries
    }

    fn view(&self, unit: &SkuState, storage_key: &str, entry: &Entry) -> Value {
        unit.view(storage_key, entry)
    }

    fn saved(&self, unit: &SkuState) {
        if self.archives() {
            self.copied.saved(unit);
        }
    }
}

/// Validates, routes to the leader (or serves here in eventual mode) and runs the ledger.
async fn handle(
    svc: Inventory,
    kind: Kind,
    path: &'static str,
    headers: HeaderMap,
    req: Request,
) -> Response {
    let (sku, qty, order_id) = match &req {
        Request::Reserve(r) => (&r.sku, r.qty, &r.order_id),
        Request::Settle(r) => (&r.sku, r.qty, &r.order_id),
    };
    let checked = idempotency_key(&headers).and_then(|k| svc.check(sku, qty, order_id).map(|_| k));
    let key = match checked {
        Ok(k) => k,
        Err(e) => return e.into_response(),
    };
    match svc.route(path, &headers, &req).await {
        Ok(route) => {
            serve_routed(route, move |t| async move {
                svc.ledger.run(&svc, t, kind, &key, &req).await
            })
            .await
        }
        Err(e) => e.into_response(),
    }
}

async fn reserve(
    State(svc): State<Inventory>,
    headers: HeaderMap,
    JsonBody(req): JsonBody<ReserveRequest>,
) -> Response {
    handle(
        svc,
        Kind::Reserve,
        "/reserve",
        headers,
        Request::Reserve(req),
    )
    .await
}

async fn release(
    State(svc): State<Inventory>,
    headers: HeaderMap,
    JsonBody(req): JsonBody<SettleRequest>,
) -> Response {
    handle(
        svc,
        Kind::Release,
        "/release",
        headers,
        Request::Settle(req),
    )
    .await
}

async fn commit(
    State(svc): State<Inventory>,
    headers: HeaderMap,
    JsonBody(req): JsonBody<SettleRequest>,
) -> Response {
    handle(svc, Kind::Commit, "/commit", headers, Request::Settle(req)).await
}

async fn stock(
    State(svc): State<Inventory>,
    Path(sku): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    if !svc.initial.contains_key(&sku) {
        return Err(ApiError::not_found(format!("unknown sku {sku:?}")));
    }
    let s = svc.load_sku(&sku, &[]).await?;
    Ok(Json(
        json!({"sku": s.sku, "available": s.available, "initial": s.initial}),
    ))
}

/// Every SKU's state, configured SKUs that were never written included.
async fn all_skus(svc: &Inventory) -> Result<BTreeMap<String, SkuState>, ApiError> {
    let recs = svc
        .ledger
        .quorum()
        .scan_all(SKU, SKU_SCAN_PAGE)
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

/// Cursor of the second phase of a paginated admin read: the archive records, by store key.
const DONE_CURSOR: &str = "~done:";

/// One page of an admin read of the records `of` builds from SKU states: first every SKU
/// record's (cursors `<sku>/<key>`), then, when archiving, the archive records' (cursors
/// `~done:<store key>`, paged through the store). A home the SKU record still holds is listed
/// from the SKU record only.
async fn records_page(
    svc: &Inventory,
    page: &Page,
    of: fn(&SkuState) -> Vec<(String, Value)>,
) -> Result<Json<Value>, ApiError> {
    let skus = all_skus(svc).await?;
    let Some(after) = page
        .after
        .as_deref()
        .and_then(|a| a.strip_prefix(DONE_CURSOR))
    else {
        let mut out = paginate(skus.values().flat_map(of).collect(), page);
        if svc.archives() && out.0["next"].is_null() {
            out.0["next"] = json!(DONE_CURSOR);
        }
        return Ok(out);
    };
    let after = (!after.is_empty()).then_some(after);
    let (recs, next) = svc
        .ledger
        .quorum()
        .scan(ARCHIVE, after, page.limit())
        .await
        .map_err(store_unavailable)?;
    let mut items = Vec::new();
    for r in recs {
        let Ok(done) = serde_json::from_value::<Settled>(r.value) else {
            continue;
        };
        let initial = skus.get(&done.sku).map_or(0, |s| s.initial);
        if skus
            .get(&done.sku)
            .is_some_and(|s| s.mentions(&done.home()))
        {
            continue;
        }
        let mut alone = SkuState::fresh(&done.sku, initial);
        alone.merge_archived(done);
        items.extend(of(&alone).into_iter().map(|(_, v)| v));
    }
    let next = next.map(|n| format!("{DONE_CURSOR}{n}"));
    Ok(Json(json!({"items": items, "next": next})))
}

fn reservation_items(s: &SkuState) -> Vec<(String, Value)> {
    s.reservation_records()
        .into_iter()
        .map(|(c, r)| (c, serde_json::to_value(r).unwrap_or_default()))
        .collect()
}

fn release_items(s: &SkuState) -> Vec<(String, Value)> {
    s.release_records()
        .into_iter()
        .map(|(c, r)| (c, serde_json::to_value(r).unwrap_or_default()))
        .collect()
}

async fn reservations(
    State(svc): State<Inventory>,
    Query(page): Query<Page>,
) -> Result<Json<serde_json::Value>, ApiError> {
    if svc.eventual() {
        return admin_page(svc.ledger.quorum(), MIRROR, &page).await;
    }
    records_page(&svc, &page, reservation_items).await
}

async fn releases(
    State(svc): State<Inventory>,
    Query(page): Query<Page>,
) -> Result<Json<serde_json::Value>, ApiError> {
    records_page(&svc, &page, release_items).await
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
    Kind::register(&[Kind::Reserve, Kind::Release, Kind::Commit]);
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
    let svc = Inventory {
        ledger: Ledger::new(quorum, elector.clone(), !args.no_idempotency),
        leader,
        initial: Arc::new(initial),
        copied: Copied::default(),
    };
    let app = Router::new()
        .route("/reserve", post(reserve))
        .route("/release", post(release))
        .route("/commit", post(commit))
        .route("/stock/{sku}", get(stock))
        .route("/admin/reservations", get(reservations))
        .route("/admin/releases", get(releases))
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
