//! The nudge: a client that sends `POST /orders` again for an order whose saga has not ended
//! (an impatient user pressing "pay" once more, under the same idempotency key) gets the same
//! answer as before, and the order service re-drives the saga's pending step at once, as a
//! real pipeline's "kick the stuck workflow" does. The node that took the resend asks the
//! order leader (`POST /admin/nudge`, forwarded like every leader call); the leader sends the
//! pending step's call once more under the step's key ([`Downstream::resend`]).
//!
//! A re-drive is a retry in the retry budget's sense: it repeats a key the saga has sent, so the
//! leader's budget must grant it, and it is refused (nothing sent) when the budget is spent.
//! The key makes the extra call harmless: one key, one effect. The saga's own driver is not
//! disturbed; it learns the outcome from its next attempt (a replay).
//!
//! Bounded: at most [`MAX_NUDGES_IN_FLIGHT`] re-drives at once per process; more are dropped
//! (`saga_nudges_total{outcome="dropped"}`).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::Semaphore;

use super::model::{OrderRecord, Status, StepName};
use super::saga::{charge_body, commit_body, reserve_body, ship_body};
use super::{order_key, Orders};
use crate::client::{Downstream, Outcome};
use crate::http::{ApiError, JsonBody};
use crate::ids::step_key;
use crate::roles::leader::Route;
use crate::roles::leader::{serve_routed, store_unavailable};

/// Re-drives one process runs at once at most.
pub const MAX_NUDGES_IN_FLIGHT: usize = 64;

/// `POST /admin/nudge`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NudgeRequest {
    /// The order whose pending step to re-drive.
    pub order_id: String,
}

/// Every outcome `saga_nudges_total` counts.
pub const OUTCOMES: [&str; 5] = ["sent", "refused", "nothing-pending", "dropped", "failed"];

fn count(outcome: &'static str) {
    debug_assert!(OUTCOMES.contains(&outcome));
    metrics::counter!("saga_nudges_total", "outcome" => outcome).increment(1);
}

/// Sets `saga_nudges_total` to 0 for every outcome.
pub fn register() {
    for o in OUTCOMES {
        metrics::counter!("saga_nudges_total", "outcome" => o).increment(0);
    }
}

/// The slots of this process's re-drives.
pub fn slots() -> Arc<Semaphore> {
    Arc::new(Semaphore::new(MAX_NUDGES_IN_FLIGHT))
}

impl Orders {
    /// The call the saga of `rec` is waiting on, if it waits on one: the downstream, path, key
    /// and body, built as the saga builds them (so a re-drive is a replay, never a reuse).
    fn pending_call(
        &self,
        rec: &OrderRecord,
    ) -> Option<(&Downstream, &'static str, String, serde_json::Value)> {
        let id = &rec.order_id;
        match rec.status {
            Status::Charging => Some((
                &self.payment,
                "/charge",
                step_key(id, StepName::Charge),
                charge_body(rec),
            )),
            Status::Shipping => Some((
                &self.shipping,
                "/ship",
                step_key(id, StepName::Ship),
                ship_body(rec),
            )),
            Status::Reserving => {
                let (i, item) = rec
                    .items
                    .iter()
                    .enumerate()
                    .find(|(i, _)| !rec.progress.reserved.contains(i))?;
                Some((
                    &self.inventory,
                    "/reserve",
                    step_key(id, StepName::Reserve(i)),
                    reserve_body(rec, item),
                ))
            }
            Status::Committing => {
                let (i, item) = rec
                    .items
                    .iter()
                    .enumerate()
                    .find(|(i, _)| !rec.progress.committed.contains(i))?;
                Some((
                    &self.inventory,
                    "/commit",
                    step_key(id, StepName::Commit(i)),
                    commit_body(rec, i, item),
                ))
            }
            // Compensation undoes in a fixed order; the saga's driver alone repeats it.
            _ => None,
        }
    }

    /// A client sent `POST /orders` again for `order_id`, whose saga has not ended: asks the
    /// leader to re-drive its pending step, without delaying the answer to the client.
    pub(super) fn nudge(&self, order_id: &str) {
        let Ok(slot) = self.nudges.clone().try_acquire_owned() else {
            count("dropped");
            return;
        };
        let (me, order_id) = (self.clone(), order_id.to_owned());
        tokio::spawn(async move {
            let _slot = slot;
            let req = NudgeRequest { order_id };
            match me
                .leader
                .route("/admin/nudge", &HeaderMap::new(), &req)
                .await
            {
                Ok(Route::Local(token)) => {
                    if let Err(e) = me.redrive(token, &req.order_id).await {
                        tracing::debug!(order_id = %req.order_id, error = %e.message, "nudge failed");
                        count("failed");
                    }
                }
                Ok(Route::Forwarded(_)) => {}
                Err(e) => {
                    tracing::debug!(order_id = %req.order_id, error = %e.message, "nudge not forwarded");
                    count("failed");
                }
            }
        });
    }

    /// On the leader: sends the pending step of `order_id` once more, as a budgeted retry.
    /// Returns whether a call was sent.
    async fn redrive(&self, token: u64, order_id: &str) -> Result<bool, ApiError> {
        let rec: Option<OrderRecord> = self
            .quorum
            .read_value(&order_key(order_id))
            .await
            .map_err(store_unavailable)?;
        let Some(rec) = rec.filter(|_| self.leader.elector().leadership() == Some(token)) else {
            count("nothing-pending");
            return Ok(false);
        };
        let Some((ds, path, key, body)) = self.pending_call(&rec) else {
            count("nothing-pending");
            return Ok(false);
        };
        match ds.resend(path, &key, &body).await {
            None => {
                count("refused");
                Ok(false)
            }
            Some(out) => {
                count("sent");
                let answered = matches!(out, Outcome::Done { .. });
                tracing::info!(%order_id, %key, answered, "pending step re-driven");
                Ok(true)
            }
        }
    }
}

/// `POST /admin/nudge`: re-drives the order's pending step on the leader (202, `sent` says
/// whether a call went out); other nodes forward it.
pub(super) async fn handle(
    State(svc): State<Orders>,
    headers: HeaderMap,
    JsonBody(req): JsonBody<NudgeRequest>,
) -> Response {
    if req.order_id.is_empty() || req.order_id.len() > 200 {
        return ApiError::bad_request("bad_order_id", "order_id must be 1 to 200 characters")
            .into_response();
    }
    match svc.leader.route("/admin/nudge", &headers, &req).await {
        Ok(route) => {
            serve_routed(route, move |token| async move {
                let sent = svc.redrive(token, &req.order_id).await?;
                Ok((StatusCode::ACCEPTED, Json(json!({"sent": sent}))))
            })
            .await
        }
        Err(e) => e.into_response(),
    }
}
