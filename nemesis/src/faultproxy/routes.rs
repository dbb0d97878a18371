//! The HTTP routes of Toxiproxy's API, with its status codes: 200 for reads and updates, 201 for
//! `POST /proxies` and `POST /populate`, 204 for deletes and `/reset`, and
//! `{"error": .., "status": ..}` with 400/404/409/500 for failures.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::Mutex;

use super::registry::{Failure, Registry};
use crate::toxiproxy::api::{
    ApiError, NewProxy, Populated, ProxyUpdate, Toxic, ToxicUpdate, ToxicWire,
};

/// The version `/version` reports: Toxiproxy's API level this server follows, and ours.
pub const VERSION: &str = concat!("2.12.0-faultproxy-", env!("CARGO_PKG_VERSION"));

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

/// The API router over `registry`.
pub fn router(registry: Arc<Mutex<Registry>>) -> Router {
    Router::new()
        .route("/version", get(version))
        .route("/reset", axum::routing::post(reset))
        .route("/proxies", get(list).post(create))
        .route("/populate", axum::routing::post(populate))
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
        .with_state(registry)
}

async fn not_found() -> Failure {
    Failure {
        status: StatusCode::NOT_FOUND,
        message: "no such route".into(),
    }
}

async fn method_not_allowed() -> Failure {
    Failure {
        status: StatusCode::METHOD_NOT_ALLOWED,
        message: "method not allowed on this route".into(),
    }
}

async fn version() -> Response {
    ok(StatusCode::OK, serde_json::json!({ "version": VERSION }))
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
    let proxies = r.lock().await.populate(ps).await?;
    Ok(ok(StatusCode::CREATED, Populated { proxies }))
}

async fn show(State(r): Shared, Path(proxy): Path<String>) -> Result<Response, Failure> {
    Ok(ok(StatusCode::OK, r.lock().await.get(&proxy)?))
}

async fn update(
    State(r): Shared,
    Path(proxy): Path<String>,
    body: Bytes,
) -> Result<Response, Failure> {
    let u: ProxyUpdate = parse(&body)?;
    Ok(ok(StatusCode::OK, r.lock().await.update(&proxy, u).await?))
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
    let wire: ToxicWire = parse(&body)?;
    let t = Toxic::try_from(wire).map_err(|m| Failure {
        status: StatusCode::BAD_REQUEST,
        message: m,
    })?;
    Ok(ok(
        StatusCode::OK,
        r.lock().await.add_toxic(&proxy, t).await?,
    ))
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
    let u: ToxicUpdate = parse(&body)?;
    let t = r.lock().await.update_toxic(&proxy, &toxic, u).await?;
    Ok(ok(StatusCode::OK, t))
}

async fn delete_toxic(
    State(r): Shared,
    Path((proxy, toxic)): Path<(String, String)>,
) -> Result<StatusCode, Failure> {
    r.lock().await.delete_toxic(&proxy, &toxic).await?;
    Ok(StatusCode::NO_CONTENT)
}
