//! What leader-based roles share: "am I the leader?", forwarding a request to the leader when
//! not, `GET /admin/leader` (docs/contracts.md §2), and turning a failed store write into the
//! right answer (stepping down when a higher token fenced it).

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::json;

use crate::auth::PeerClient;
use crate::config::NodeConfig;
use crate::http::{ApiError, DO_NOT_RETRY, IDEMPOTENCY_KEY};
use crate::lease::{Elector, StepDown};
use crate::quorum::{Unavailable, WriteOutcome};

/// Header a forwarded request carries (it is never forwarded twice).
pub const FORWARDED_BY: &str = "x-forwarded-by";
/// How long a request waits for an election when no leader is known.
const LEADER_WAIT: Duration = Duration::from_millis(1500);

/// Where a request is served.
pub enum Route {
    /// Here, by the leader holding this token.
    Local(u64),
    /// The leader answered this.
    Forwarded(Response),
}

/// A leader-based role's view of its domain's leadership.
#[derive(Clone)]
pub struct Leader {
    role: &'static str,
    node: String,
    elector: Elector,
    cfg: NodeConfig,
    http: reqwest::Client,
}

impl Leader {
    /// Wraps `elector` for `role`; forwarded calls go through `peers` and time out after
    /// `timeout`.
    pub fn new(
        role: &'static str,
        cfg: &NodeConfig,
        elector: Elector,
        timeout: Duration,
        peers: &PeerClient,
    ) -> Leader {
        let http = peers.client(timeout);
        Leader {
            role,
            node: cfg.node.clone(),
            elector,
            cfg: cfg.clone(),
            http,
        }
    }

    /// The elector.
    pub fn elector(&self) -> &Elector {
        &self.elector
    }

    /// Serves here if this process leads; otherwise forwards `body` under the request's
    /// idempotency key to the leader's `path` and relays its answer.
    pub async fn route<B: Serialize>(
        &self,
        path: &str,
        headers: &HeaderMap,
        body: &B,
    ) -> Result<Route, ApiError> {
        if let Some(token) = self.elector.leadership() {
            return Ok(Route::Local(token));
        }
        if headers.contains_key(FORWARDED_BY) {
            return Err(not_leader(format!(
                "{} on {} is not the leader (request was already forwarded)",
                self.role, self.node
            )));
        }
        let view = self.elector.wait_for_leader(LEADER_WAIT).await;
        if let Some(token) = self.elector.leadership() {
            return Ok(Route::Local(token));
        }
        let Some(leader) = view.leader.filter(|l| *l != self.node) else {
            return Err(not_leader(format!("no {} leader is known yet", self.role)));
        };
        let Some(base) = self.cfg.role_url(self.role, &leader) else {
            return Err(not_leader(format!(
                "leader {leader} has no configured {} address",
                self.role
            )));
        };
        let mut req = self
            .http
            .post(format!("{base}{path}"))
            .header(FORWARDED_BY, &self.node)
            .json(body);
        if let Some(k) = headers.get(IDEMPOTENCY_KEY) {
            req = req.header(IDEMPOTENCY_KEY, k);
        }
        match req.send().await {
            Ok(resp) => Ok(Route::Forwarded(relay(resp).await)),
            // Not connected: the request was never sent, so nothing happened.
            Err(e) if e.is_connect() => Err(not_leader(format!(
                "leader {leader} is unreachable (nothing was sent): {}",
                error_chain(&e)
            ))),
            // Maybe sent: the leader may have acted on it.
            Err(e) => Err(ApiError::new(
                StatusCode::BAD_GATEWAY,
                "leader_unreachable",
                format!("forwarding to leader {leader}: {}", error_chain(&e)),
            )),
        }
    }

    /// `GET /admin/leader`.
    pub fn admin(&self) -> Json<serde_json::Value> {
        let view = self.elector.view();
        let is_leader = self.elector.leadership().is_some();
        let leader = if is_leader {
            Some(self.node.clone())
        } else {
            view.leader.clone()
        };
        Json(json!({
            "node": self.node,
            "role": self.role,
            "is_leader": is_leader,
            "leader": leader,
            "token": view.token,
        }))
    }
}

/// An error with its causes, `outer: inner: ...` (reqwest's own text leaves out the cause).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

async fn relay(resp: reqwest::Response) -> Response {
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let no_retry = resp.headers().contains_key(DO_NOT_RETRY);
    let bytes = resp.bytes().await.unwrap_or_default();
    let mut out = Response::new(Body::from(bytes));
    *out.status_mut() = status;
    out.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if no_retry {
        out.headers_mut()
            .insert(DO_NOT_RETRY, HeaderValue::from_static("1"));
    }
    out
}

/// 503 `not_leader`: retry (elsewhere or later).
pub fn not_leader(message: String) -> ApiError {
    ApiError::unavailable("not_leader", message)
}

/// A store read that could not reach its quorum: nothing happened, retry later.
pub fn store_unavailable(e: Unavailable) -> ApiError {
    ApiError::unavailable("store_unavailable", e.to_string())
}

/// The answer for a write that did not succeed. A write fenced by a higher token means this
/// process no longer leads under a lower one: it steps down (the quorum client's floor already
/// ends its leadership; this names the cause).
pub fn write_error(outcome: &WriteOutcome, elector: Option<&Elector>) -> ApiError {
    if let (Some(t), Some(e)) = (outcome.fenced_by(), elector) {
        e.step_down_below(
            t,
            StepDown::WriteFenced,
            &format!("a write was fenced by token {t}"),
        );
    }
    match outcome {
        WriteOutcome::Ok(_) => ApiError::internal("write_error called on a successful write"),
        WriteOutcome::Failed {
            fenced_by: Some(t),
            reason,
        } => not_leader(format!("fenced by token {t}: {reason}")),
        WriteOutcome::Failed { reason, .. } => {
            ApiError::internal(format!("every store replica refused the write: {reason}"))
        }
        // No definite answer: the effect may be stored. A retry under the same key settles it.
        WriteOutcome::Unknown { reason, .. } => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "outcome_unknown",
            format!("the write reached too few replicas: {reason}"),
        ),
    }
}

/// Turns a route into a response: the leader's answer as is, or `f(token)` here.
pub async fn serve_routed<F, Fut>(route: Route, f: F) -> Response
where
    F: FnOnce(u64) -> Fut,
    Fut: std::future::Future<Output = Result<(StatusCode, Json<serde_json::Value>), ApiError>>,
{
    match route {
        Route::Forwarded(resp) => resp,
        Route::Local(token) => match f(token).await {
            Ok(ok) => ok.into_response(),
            Err(e) => e.into_response(),
        },
    }
}
