//! HTTP plumbing shared by every role: JSON errors, a JSON body extractor whose rejections are
//! JSON errors too, and the `/health` and `/metrics` routes. The server around the routes
//! (connections, timeouts, the secret, load shedding) is [`crate::server`].

use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::de::DeserializeOwned;
use serde_json::json;

/// Header every effectful request must carry.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Response header telling callers not to retry (overload shedding).
pub const DO_NOT_RETRY: &str = "x-do-not-retry";

/// A JSON error: `{"error": code, "message": text}` with an HTTP status.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code, e.g. `missing_idempotency_key`.
    pub code: &'static str,
    /// Human-readable detail quoting the culprit.
    pub message: String,
    /// Extra fields merged into the body (e.g. `current_token` of a fenced write).
    pub details: Option<serde_json::Map<String, serde_json::Value>>,
    /// Sends `x-do-not-retry: 1` (overload: callers must not retry).
    pub do_not_retry: bool,
}

impl ApiError {
    /// Builds an error.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            details: None,
            do_not_retry: false,
        }
    }

    /// 409.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// 422.
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    /// 503 with `x-do-not-retry`: shed load; the caller must not retry.
    pub fn overloaded(message: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded", message);
        e.do_not_retry = true;
        e
    }

    /// Adds a field to the error body.
    pub fn with(mut self, name: &str, value: serde_json::Value) -> Self {
        self.details
            .get_or_insert_with(serde_json::Map::new)
            .insert(name.to_owned(), value);
        self
    }

    /// 400.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 503: the service cannot serve this now; callers may retry elsewhere or later.
    pub fn unavailable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
    }

    /// 500 for storage failures: the outcome may be unknown to the caller.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = self.details.unwrap_or_default();
        body.insert("error".into(), json!(self.code));
        body.insert("message".into(), json!(self.message));
        let mut resp = (self.status, Json(serde_json::Value::Object(body))).into_response();
        if self.do_not_retry {
            resp.headers_mut()
                .insert(DO_NOT_RETRY, axum::http::HeaderValue::from_static("1"));
        }
        resp
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        ApiError::internal(format!("{e:#}"))
    }
}

/// Like `axum::Json`, but a malformed body is a JSON 400 (415 for a wrong content type, 413
/// `body_too_large` past axum's own limit).
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(JsonBody(v)),
            Err(rejection) => {
                let status = rejection.status();
                let code = match status {
                    StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
                    StatusCode::UNPROCESSABLE_ENTITY => "invalid_body",
                    StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
                    _ => "malformed_json",
                };
                Err(ApiError::new(status, code, rejection.body_text()))
            }
        }
    }
}

/// The idempotency key of a request, or a 400 naming the header.
pub fn idempotency_key(headers: &axum::http::HeaderMap) -> Result<String, ApiError> {
    let value = headers.get(IDEMPOTENCY_KEY).ok_or_else(|| {
        ApiError::bad_request(
            "missing_idempotency_key",
            "the Idempotency-Key header is required",
        )
    })?;
    let key = value
        .to_str()
        .map_err(|_| ApiError::bad_request("bad_idempotency_key", "Idempotency-Key is not ASCII"))?
        .trim();
    if key.is_empty() || key.len() > 200 {
        return Err(ApiError::bad_request(
            "bad_idempotency_key",
            "Idempotency-Key must be 1 to 200 characters",
        ));
    }
    Ok(key.to_owned())
}

/// `/health` (200 with the role and node) and `/metrics` (Prometheus text format).
pub fn common_routes(role: &'static str, node: String, metrics: PrometheusHandle) -> Router {
    Router::new()
        .route(
            "/health",
            get(move || {
                let node = node.clone();
                async move { Json(json!({"status": "ok", "role": role, "node": node})) }
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let m = metrics.clone();
                async move { ([("content-type", "text/plain; version=0.0.4")], m.render()) }
            }),
        )
}

/// Query parameters of paginated admin reads: `?after=<cursor>&limit=<n>`.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Page {
    /// Return items strictly after this key.
    #[serde(default)]
    pub after: Option<String>,
    /// At most this many; capped at [`Page::MAX_LIMIT`].
    #[serde(default)]
    pub limit: Option<usize>,
}

impl Page {
    /// Upper bound of one page.
    pub const MAX_LIMIT: usize = 1000;

    /// The effective page size.
    pub fn limit(&self) -> usize {
        self.limit.unwrap_or(500).clamp(1, Self::MAX_LIMIT)
    }
}
