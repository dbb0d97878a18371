//! One request through the server, before and after the role's router: the URI length, the
//! cluster secret (all but the open routes), the body read in full under a size limit and a
//! timeout *before* the request takes an in-flight slot (so that slow senders hold connections,
//! never the slots real requests need), the in-flight limit (`/health` and `/metrics` skip it),
//! and one error shape for every answer: a 4xx/5xx that is not JSON yet (axum's 404, 405 and
//! extractor rejections) becomes `{"error", "message"}`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use axum::response::IntoResponse;
use axum::Router;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use tokio::sync::Semaphore;

use super::conn::ConnState;
use crate::auth::ClusterSecret;
use crate::http::ApiError;

/// Longest request target (path and query) served; longer is 414 `uri_too_long`.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Largest body of a request to an open route (an order is a few kilobytes at most).
pub const MAX_PUBLIC_BODY_BYTES: usize = 64 * 1024;
/// Most characters of a path quoted in an error message.
const QUOTED_PATH_CHARS: usize = 100;
/// Largest non-JSON error body read to be quoted as the JSON error's message.
const MAX_REWRITTEN_BODY_BYTES: usize = 4096;

/// What every request of one role shares.
pub struct Shared {
    /// The role's routes, `/health` and `/metrics` included.
    pub router: Router,
    /// The secret every route but the open ones requires.
    pub secret: ClusterSecret,
    /// Slots of requests being served.
    pub in_flight: Arc<Semaphore>,
    /// Their number.
    pub max_in_flight: usize,
    /// Largest body of an authenticated request.
    pub max_body_bytes: usize,
    /// How long a body may take after its head.
    pub body_read_timeout: Duration,
}

/// Routes anyone may call: the public order API, health and metrics (Prometheus scrapes
/// without credentials). Decided by path alone, before routing.
pub fn is_open(path: &str) -> bool {
    match path {
        "/health" | "/metrics" | "/orders" => true,
        _ => path
            .strip_prefix("/orders/")
            .is_some_and(|id| !id.is_empty() && !id.contains('/')),
    }
}

fn skips_in_flight_limit(path: &str) -> bool {
    path == "/health" || path == "/metrics"
}

/// `path`, cut to a length fit for a message.
fn quoted(path: &str) -> String {
    let mut cut: String = path.chars().take(QUOTED_PATH_CHARS).collect();
    if cut.len() < path.len() {
        cut.push_str("...");
    }
    format!("{cut:?}")
}

/// An error answered before the body was read: the connection closes after it.
fn early(e: ApiError) -> Response<Body> {
    let unauthorized = e.status == StatusCode::UNAUTHORIZED;
    let mut resp = e.into_response();
    let headers = resp.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    if unauthorized {
        headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    resp
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Serves one request; `conn` learns when it starts and when its response is produced.
pub async fn handle(
    shared: Arc<Shared>,
    conn: Arc<ConnState>,
    req: Request<hyper::body::Incoming>,
) -> Response<Tracked> {
    conn.busy();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let resp = admit_and_route(&shared, req).await;
    let resp = one_error_shape(resp, &method, &path).await;
    resp.map(|body| Tracked {
        inner: body,
        conn: Some(conn),
    })
}

async fn admit_and_route(shared: &Shared, req: Request<hyper::body::Incoming>) -> Response<Body> {
    let target = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if target > MAX_URI_BYTES {
        return early(ApiError::new(
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            format!("the request target is {target} bytes; at most {MAX_URI_BYTES}"),
        ));
    }
    let open = is_open(req.uri().path());
    if !open {
        if let Err(e) = shared.secret.verify(req.headers()) {
            return early(e);
        }
    }
    let limit = if open {
        shared.max_body_bytes.min(MAX_PUBLIC_BODY_BYTES)
    } else {
        shared.max_body_bytes
    };
    let too_large = || {
        early(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the request body is larger than {limit} bytes"),
        ))
    };
    if declared_length(req.headers()).is_some_and(|n| n > limit as u64) {
        return too_large();
    }
    let (parts, body) = req.into_parts();
    let read = tokio::time::timeout(
        shared.body_read_timeout,
        Limited::new(body, limit).collect(),
    );
    let bytes: Bytes = match read.await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => return too_large(),
        Ok(Err(e)) => {
            return early(ApiError::bad_request(
                "bad_body",
                format!("reading the request body: {e}"),
            ))
        }
        Err(_) => {
            metrics::counter!("connections_timed_out_total", "phase" => "body").increment(1);
            return early(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                format!(
                    "the request body did not arrive within {} ms",
                    shared.body_read_timeout.as_millis()
                ),
            ));
        }
    };
    let path = parts.uri.path().to_owned();
    let req = Request::from_parts(parts, Body::from(bytes));
    let _permit = if skips_in_flight_limit(&path) {
        None
    } else {
        match shared.in_flight.clone().try_acquire_owned() {
            Ok(p) => Some(p),
            Err(_) => {
                metrics::counter!("requests_shed_total").increment(1);
                return ApiError::overloaded(format!(
                    "more than {} requests in flight",
                    shared.max_in_flight
                ))
                .into_response();
            }
        }
    };
    match tower::ServiceExt::oneshot(shared.router.clone(), req).await {
        Ok(resp) => resp,
        Err(never) => match never {},
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// The error code of a status whose body was not JSON.
fn code_of(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "bad_request",
        401 => "unauthorized",
        404 => "not_found",
        405 => "method_not_allowed",
        408 => "request_timeout",
        413 => "body_too_large",
        414 => "uri_too_long",
        415 => "unsupported_media_type",
        422 => "invalid_body",
        s if s >= 500 => "internal",
        _ => "bad_request",
    }
}

/// Turns an error without a JSON body into `{"error", "message"}` (keeping `allow` and the
/// other headers), and gives every response a content type (the connection guard tells the
/// service's answers from hyper's automatic ones by it).
async fn one_error_shape(resp: Response<Body>, method: &Method, path: &str) -> Response<Body> {
    let status = resp.status();
    if is_json(resp.headers()) {
        return resp;
    }
    if !(status.is_client_error() || status.is_server_error()) {
        let mut resp = resp;
        if !resp.headers().contains_key(header::CONTENT_TYPE) {
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = match Limited::new(body, MAX_REWRITTEN_BODY_BYTES).collect().await {
        Ok(c) => String::from_utf8_lossy(&c.to_bytes()).trim().to_owned(),
        Err(_) => String::new(),
    };
    let message = match (status.as_u16(), text.is_empty()) {
        (404, true) => format!("no route {method} {}", quoted(path)),
        (405, true) => {
            let allowed = parts
                .headers
                .get(header::ALLOW)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            format!(
                "{method} is not allowed on {} (allowed: {allowed})",
                quoted(path)
            )
        }
        (_, true) => status.canonical_reason().unwrap_or("error").to_owned(),
        (_, false) => text,
    };
    let mut out = ApiError::new(status, code_of(status), message).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}

/// A response body that tells its connection when the response has been produced.
pub struct Tracked {
    inner: Body,
    conn: Option<Arc<ConnState>>,
}

impl Tracked {
    fn finish(&mut self) {
        if let Some(c) = self.conn.take() {
            c.done();
        }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.finish();
    }
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        if let std::task::Poll::Ready(None) = polled {
            self.finish();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves which paths are open: the public order API, health and metrics, and nothing
    /// that merely starts like them.
    #[test]
    fn open_routes_are_exactly_the_public_ones() {
        for open in ["/health", "/metrics", "/orders", "/orders/o-1"] {
            assert!(is_open(open), "{open}");
        }
        for closed in [
            "/orders/",
            "/orders/a/b",
            "/orders/a/",
            "/healthz",
            "/admin/orders",
            "/kv/order/write",
            "/lease/order/acquire",
            "/refund",
            "/health/",
            "",
        ] {
            assert!(!is_open(closed), "{closed}");
        }
    }

    /// Proves a path quoted in a message is cut to a bounded length.
    #[test]
    fn quoted_paths_are_bounded() {
        let long = "/".to_owned() + &"x".repeat(100_000);
        assert!(quoted(&long).len() < QUOTED_PATH_CHARS + 10);
        assert_eq!(quoted("/a"), "\"/a\"");
    }
}
