//! The `store` role: one replica of a versioned key-value store with per-domain fencing tokens
//! and leases. See [`wire`] for the routes and [`engine`] for durability and group commit.
//!
//! A replica never coordinates with other replicas; coordinators (the [`crate::quorum`] client)
//! write to N of them and read from R.

mod apply;
pub mod engine;
pub mod wire;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use self::engine::{Answer, Engine, EngineError, Op};
use self::wire::{
    check_token, is_fenced, LeaseBody, ReadBody, ReadReply, RepairBody, WriteBody, DOMAINS,
    MAX_BATCH_ENTRIES, MAX_KEY_BYTES, MAX_LEASE_TTL_MS, MAX_SCAN_LIMIT, MAX_TOKEN,
};
use crate::cli::StoreArgs;
use crate::http::{common_routes, ApiError, JsonBody};

fn check_domain(domain: &str) -> Result<(), ApiError> {
    if DOMAINS.contains(&domain) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_domain",
            format!("unknown domain {domain:?} (known: {DOMAINS:?})"),
        ))
    }
}

fn check_key(key: &str) -> Result<(), ApiError> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(ApiError::bad_request(
            "bad_key",
            format!("key {key:?} must be 1 to {MAX_KEY_BYTES} bytes"),
        ));
    }
    Ok(())
}

fn check_batch(n: usize, what: &str) -> Result<(), ApiError> {
    if n == 0 || n > MAX_BATCH_ENTRIES {
        return Err(ApiError::bad_request(
            "bad_batch",
            format!("{what} must hold 1 to {MAX_BATCH_ENTRIES} entries, got {n}"),
        ));
    }
    Ok(())
}

/// 400 `bad_token` unless `token` may be written in `domain` ([`check_token`]); the body
/// carries the bound as `token_limit`.
fn token_in_range(domain: &str, token: u64) -> Result<(), ApiError> {
    check_token(domain, token).map_err(|why| {
        ApiError::bad_request("bad_token", why).with("token_limit", MAX_TOKEN.into())
    })
}

fn engine_error(e: EngineError) -> ApiError {
    match e {
        EngineError::Overloaded => ApiError::overloaded(e.to_string()),
        EngineError::Storage(_) | EngineError::Closed => ApiError::internal(e.to_string()),
    }
}

async fn write(
    State(engine): State<Engine>,
    Path(domain): Path<String>,
    JsonBody(body): JsonBody<WriteBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    check_domain(&domain)?;
    token_in_range(&domain, body.token)?;
    check_batch(body.entries.len(), "entries")?;
    for e in &body.entries {
        check_key(&e.key)?;
    }
    match engine
        .submit(&domain, Op::Write(body))
        .await
        .map_err(engine_error)?
    {
        Answer::Written(reply) => Ok(Json(serde_json::to_value(reply).unwrap_or_default())),
        Answer::Fenced { current_token } => Err(ApiError::conflict(
            "fenced",
            format!("token is below domain {domain}'s current token {current_token}"),
        )
        .with("current_token", current_token.into())),
        other => Err(ApiError::internal(format!("unexpected answer {other:?}"))),
    }
}

async fn read(
    State(engine): State<Engine>,
    Path(domain): Path<String>,
    JsonBody(body): JsonBody<ReadBody>,
) -> Result<Json<ReadReply>, ApiError> {
    check_domain(&domain)?;
    check_batch(body.keys.len(), "keys")?;
    for k in &body.keys {
        check_key(k)?;
    }
    let (records, current_token) = tokio::task::spawn_blocking(move || {
        engine
            .read(&domain, &body.keys)
            .map(|r| (r, engine.floor(&domain)))
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?
    .map_err(engine_error)?;
    Ok(Json(ReadReply {
        records,
        current_token,
    }))
}

async fn repair(
    State(engine): State<Engine>,
    Path(domain): Path<String>,
    JsonBody(body): JsonBody<RepairBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    check_domain(&domain)?;
    check_batch(body.records.len(), "records")?;
    for r in &body.records {
        check_key(&r.key)?;
        if r.domain != domain || r.token != r.version.token {
            return Err(ApiError::bad_request(
                "bad_record",
                format!(
                    "record {:?}: domain {:?} and token {} must match the path domain and version",
                    r.key, r.domain, r.token
                ),
            ));
        }
        token_in_range(&domain, r.version.token)?;
    }
    match engine
        .submit(&domain, Op::Repair(body.records))
        .await
        .map_err(engine_error)?
    {
        Answer::Repaired(reply) => Ok(Json(serde_json::to_value(reply).unwrap_or_default())),
        other => Err(ApiError::internal(format!("unexpected answer {other:?}"))),
    }
}

/// `?prefix=&after=&limit=`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScanQuery {
    #[serde(default)]
    prefix: String,
    #[serde(default)]
    after: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
}

async fn scan(
    State(engine): State<Engine>,
    Path(domain): Path<String>,
    Query(q): Query<ScanQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    check_domain(&domain)?;
    let limit = q.limit.unwrap_or(MAX_SCAN_LIMIT);
    if limit == 0 || limit > MAX_SCAN_LIMIT {
        return Err(ApiError::bad_request(
            "bad_limit",
            format!("limit {limit} must be 1 to {MAX_SCAN_LIMIT}"),
        ));
    }
    let reply = tokio::task::spawn_blocking(move || {
        engine.scan(&domain, &q.prefix, q.after.as_deref(), limit)
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?
    .map_err(engine_error)?;
    Ok(Json(serde_json::to_value(reply).unwrap_or_default()))
}

/// 400 `unfenced_domain` for a domain written without a leader: it has no leases.
fn check_leased(domain: &str) -> Result<(), ApiError> {
    if is_fenced(domain) {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "unfenced_domain",
            format!("domain {domain} is written without a leader: it has no lease"),
        ))
    }
}

async fn lease_state(
    State(engine): State<Engine>,
    Path(domain): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    check_domain(&domain)?;
    check_leased(&domain)?;
    Ok(Json(
        serde_json::to_value(engine.lease_state(&domain)).unwrap_or_default(),
    ))
}

async fn lease_op(
    State(engine): State<Engine>,
    Path((domain, action)): Path<(String, String)>,
    JsonBody(body): JsonBody<LeaseBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    check_domain(&domain)?;
    check_leased(&domain)?;
    if body.holder.is_empty() || body.holder.len() > 64 {
        return Err(ApiError::bad_request(
            "bad_holder",
            "holder must be 1 to 64 bytes",
        ));
    }
    token_in_range(&domain, body.token)?;
    let needs_ttl = action != "release";
    if needs_ttl && (body.ttl_ms == 0 || body.ttl_ms > MAX_LEASE_TTL_MS) {
        return Err(ApiError::bad_request(
            "bad_ttl",
            format!("ttl_ms {} must be 1 to {MAX_LEASE_TTL_MS}", body.ttl_ms),
        ));
    }
    let op = match action.as_str() {
        "acquire" => Op::Acquire(body),
        "renew" => Op::Renew(body),
        "release" => Op::Release(body),
        _ => {
            return Err(ApiError::not_found(format!(
                "no lease action {action:?} (acquire, renew, release)"
            )))
        }
    };
    match engine.submit(&domain, op).await.map_err(engine_error)? {
        Answer::Lease(reply) => Ok(Json(serde_json::to_value(reply).unwrap_or_default())),
        other => Err(ApiError::internal(format!("unexpected answer {other:?}"))),
    }
}

/// The store's routes over `engine`.
pub fn router(engine: Engine) -> Router {
    Router::new()
        .route("/kv/{domain}/write", post(write))
        .route("/kv/{domain}/read", post(read))
        .route("/kv/{domain}/repair", post(repair))
        .route("/kv/{domain}/scan", get(scan))
        .route("/lease/{domain}", get(lease_state))
        .route("/lease/{domain}/{action}", post(lease_op))
        .with_state(engine)
}

/// Runs the store role until SIGTERM.
pub async fn run(args: StoreArgs) -> anyhow::Result<()> {
    let boot = crate::roles::boot("store", &args.common)?;
    let engine = Engine::open(&args.common.data_dir.join("store.redb"), !args.no_fencing)?;
    // Every fenced domain's count is present from the first scrape on, zero or not.
    for d in DOMAINS.iter().filter(|d| is_fenced(d)) {
        metrics::counter!("fencing_rejected_writes_total", "domain" => *d).increment(0);
    }
    if args.no_fencing {
        tracing::warn!("fencing is disabled: stale writes will be admitted");
    }
    let app = router(engine).merge(common_routes(
        "store",
        boot.cfg.node.clone(),
        boot.metrics.clone(),
    ));
    let limits = crate::server::Limits::for_store(&boot.cfg.settings);
    crate::server::serve(boot.listen, app, limits, boot.secret.clone()).await
}
