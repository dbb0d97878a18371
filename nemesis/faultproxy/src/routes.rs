//! The HTTP routes of Toxiproxy's API, with its status codes: 200 for reads, updates and toxic
//! creation, 201 for `POST /proxies` and `POST /populate`, 204 for deletes and `/reset`, and
//! `{"error": .., "status": ..}` with 400/404/409/500 for failures. Every answer carries an
//! `X-Toxiproxy-Request-Id`; a browser (`User-Agent: Mozilla/...`) gets 403, as from Toxiproxy,
//! so a web page cannot drive the API from a user's browser.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::Mutex;

use crate::api::{ApiError, NewProxy, Populated, ProxyUpdate, ToxicUpdate, ToxicWire};
use crate::registry::{Failure, Registry};

/// The version `/version` reports: Toxiproxy's API level this server follows, and ours.
pub const VERSION: &str = concat!("2.12.0-faultproxy-", env!("CARGO_PKG_VERSION"));
/// The request-id header (Toxiproxy's).
pub const REQUEST_ID: &str = "x-toxiproxy-request-id";

type Shared = State<Arc<Mutex<Registry>>>;

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let body = ApiError {
            error: self.message,
            status: self.status.as_u16(),
        };
        (self.status, Json(body)).into_response()
    }
}

fn ok<T: Serialize>(status: StatusCode, v: T) -> Response {
    (status, Json(v)).into_response()
}

fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, Failure> {
    serde_json::from_slice(body).map_err(Failure::bad_body)
}

/// A unique request id in the shape Toxiproxy's (an xid: 12 bytes of time, host, process and
/// counter, 20 characters of base32hex).
fn request_id() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as u32;
    let pid = std::process::id();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut raw = [0u8; 12];
    raw[..4].copy_from_slice(&secs.to_be_bytes());
    raw[4..8].copy_from_slice(&pid.to_be_bytes());
    raw[8..].copy_from_slice(&n.to_be_bytes());
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";
    let bits = u128::from_be_bytes({
        let mut b = [0u8; 16];
        b[4..].copy_from_slice(&raw);
        b
    });
    (0..20)
        .rev()
        .map(|i| ALPHABET[((bits >> (i * 5)) & 31) as usize] as char)
        .collect()
}

async fn toxiproxy_layer(req: Request, next: Next) -> Response {
    let browser = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ua| ua.starts_with("Mozilla/"));
    let mut resp = if browser {
        (
            StatusCode::FORBIDDEN,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            Body::from("User agent not allowed\n"),
        )
            .into_response()
    } else {
        next.run(req).await
    };
    if let Ok(v) = HeaderValue::from_str(&request_id()) {
        resp.headers_mut().insert(REQUEST_ID, v);
    }
    resp
}

/// The API router over `registry`.
pub fn router(registry: Arc<Mutex<Registry>>) -> Router {
    Router::new()
        .route("/version", get(version))
        .route("/reset", post(reset))
        .route("/proxies", get(list).post(create))
        .route("/populate", post(populate))
        .route(
            "/proxies/{proxy}",
            get(show).post(update).patch(update).delete(delete),
        )
        .route("/proxies/{proxy}/toxics", get(toxics).post(add_toxic))
        .route(
            "/proxies/{proxy}/toxics/{toxic}",
            get(toxic)
                .post(update_toxic)
                .patch(update_toxic)
                .delete(delete_toxic),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(toxiproxy_layer))
        .with_state(registry)
}

async fn not_found() -> Failure {
    Failure::new(StatusCode::NOT_FOUND, "no such route")
}

async fn method_not_allowed() -> Failure {
    Failure::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed on this route",
    )
}

async fn version() -> Response {
    let body = format!("{{\"version\": \"{VERSION}\"}}\n");
    (
        [(header::CONTENT_TYPE, "application/json;charset=utf-8")],
        body,
    )
        .into_response()
}

async fn reset(State(r): Shared) -> Result<StatusCode, Failure> {
    r.lock().await.reset().await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list(State(r): Shared) -> Response {
    ok(StatusCode::OK, r.lock().await.list())
}

async fn create(State(r): Shared, body: Bytes) -> Result<Response, Failure> {
    let p: NewProxy = parse(&body)?;
    let created = r.lock().await.create(p).await?;
    Ok(ok(StatusCode::CREATED, created))
}

async fn populate(State(r): Shared, body: Bytes) -> Result<Response, Failure> {
    let ps: Vec<NewProxy> = parse(&body)?;
    let done = r.lock().await.populate(ps).await?;
    let status = done
        .failure
        .as_ref()
        .map_or(StatusCode::CREATED, |f| f.status);
    let answer = Populated {
        status: done.failure.as_ref().map(|f| f.status.as_u16()),
        error: done.failure.map(|f| f.message),
        proxies: done.proxies,
    };
    Ok(ok(status, answer))
}

async fn show(State(r): Shared, Path(proxy): Path<String>) -> Result<Response, Failure> {
    Ok(ok(StatusCode::OK, r.lock().await.get(&proxy)?))
}

async fn update(
    State(r): Shared,
    Path(proxy): Path<String>,
    body: Bytes,
) -> Result<Response, Failure> {
    let mut reg = r.lock().await;
    reg.get(&proxy)?;
    let u: ProxyUpdate = parse(&body)?;
    Ok(ok(StatusCode::OK, reg.update(&proxy, u).await?))
}

async fn delete(State(r): Shared, Path(proxy): Path<String>) -> Result<StatusCode, Failure> {
    r.lock().await.delete(&proxy).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn toxics(State(r): Shared, Path(proxy): Path<String>) -> Result<Response, Failure> {
    Ok(ok(StatusCode::OK, r.lock().await.toxics(&proxy)?))
}

async fn add_toxic(
    State(r): Shared,
    Path(proxy): Path<String>,
    body: Bytes,
) -> Result<Response, Failure> {
    let mut reg = r.lock().await;
    reg.get(&proxy)?;
    let wire: ToxicWire = parse(&body)?;
    Ok(ok(StatusCode::OK, reg.add_toxic(&proxy, wire)?))
}

async fn toxic(
    State(r): Shared,
    Path((proxy, toxic)): Path<(String, String)>,
) -> Result<Response, Failure> {
    Ok(ok(StatusCode::OK, r.lock().await.toxic(&proxy, &toxic)?))
}

async fn update_toxic(
    State(r): Shared,
    Path((proxy, toxic)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, Failure> {
    let mut reg = r.lock().await;
    reg.toxic(&proxy, &toxic)?;
    let u: ToxicUpdate = parse(&body)?;
    Ok(ok(StatusCode::OK, reg.update_toxic(&proxy, &toxic, u)?))
}

async fn delete_toxic(
    State(r): Shared,
    Path((proxy, toxic)): Path<(String, String)>,
) -> Result<StatusCode, Failure> {
    r.lock().await.delete_toxic(&proxy, &toxic)?;
    Ok(StatusCode::NO_CONTENT)
}
