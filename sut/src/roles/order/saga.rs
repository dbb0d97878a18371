//! The saga driver: reserve stock → charge → create shipment → commit stock; on a refusal,
//! undo in reverse (cancel shipment, refund, release the stock not committed). Only the order
//! leader drives sagas.
//!
//! Before each step the saga writes the next status with the leader's fencing token, so a new
//! leader resumes every saga from where it stopped; a deposed leader's late writes are fenced.
//! Every call carries a key derived from (order id, step), so a step repeated by a resumed saga
//! or a deposed leader has its effect once. An unknown outcome (timeout, 5xx, 409 in flight) is
//! never taken for a refusal: the step is retried under the same key until it is definite.

use std::time::Duration;

use serde_json::json;

use super::model::{Item, OrderRecord, Status, Step, StepName, StepOutcome};
use super::Orders;
use crate::client::{Downstream, Outcome};
use crate::ids::step_key;
use crate::lease::StepDown;
use crate::quorum::WriteOutcome;
use crate::roles::common::now_ms;

/// Attempts of one step within one drive; then the saga is parked until the next sweep.
const STEP_ATTEMPTS_PER_DRIVE: u32 = 20;
/// Attempts of one saga-state write within one drive.
const PERSIST_ATTEMPTS: u32 = 5;
/// Status changes one drive makes at most (a saga needs fewer than 10).
const MAX_TRANSITIONS: usize = 32;
/// Cap of the pause between attempts of an unknown step.
const MAX_STEP_BACKOFF: Duration = Duration::from_secs(2);

/// Why a drive stopped before the saga ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// This process no longer leads under the drive's token.
    Lost,
    /// Still undecided after the bounded attempts; the next sweep resumes it.
    Parked(String),
}

/// A step's definite answer.
enum Definite {
    Ok,
    Refused(String),
}

/// The body of the charge (and of the refund) of `rec`.
pub(super) fn charge_body(rec: &OrderRecord) -> serde_json::Value {
    json!({"order_id": rec.order_id, "amount": rec.amount})
}

/// The body of the shipment of `rec`.
pub(super) fn ship_body(rec: &OrderRecord) -> serde_json::Value {
    json!({"order_id": rec.order_id})
}

/// The body of the reservation of `item`.
pub(super) fn reserve_body(rec: &OrderRecord, item: &Item) -> serde_json::Value {
    json!({"sku": item.sku, "qty": item.qty, "order_id": rec.order_id})
}

/// The body of the commit of item `i` (naming its reservation).
pub(super) fn commit_body(rec: &OrderRecord, i: usize, item: &Item) -> serde_json::Value {
    json!({
        "sku": item.sku, "qty": item.qty, "order_id": rec.order_id,
        "reservation": step_key(&rec.order_id, StepName::Reserve(i)),
    })
}

fn backoff(attempt: u32) -> Duration {
    (Duration::from_millis(100) * 2u32.saturating_pow(attempt.min(5))).min(MAX_STEP_BACKOFF)
}

impl Orders {
    fn still_leading(&self, token: u64) -> Result<(), Stop> {
        if self.leader.elector().leadership() == Some(token) {
            Ok(())
        } else {
            Err(Stop::Lost)
        }
    }

    /// Calls `path` under `key` until the answer is definite (or the drive must stop).
    async fn step(
        &self,
        token: u64,
        ds: &Downstream,
        path: &str,
        key: &str,
        body: serde_json::Value,
    ) -> Result<Definite, Stop> {
        let mut last = String::new();
        for attempt in 0..STEP_ATTEMPTS_PER_DRIVE {
            self.still_leading(token)?;
            match ds.post(path, key, &body).await {
                Outcome::Done { status, .. } if status < 300 => return Ok(Definite::Ok),
                Outcome::Done { status, body } => {
                    return Ok(Definite::Refused(format!(
                        "{} {path}: HTTP {status}: {}",
                        ds.name,
                        body["error"].as_str().unwrap_or("refused")
                    )))
                }
                Outcome::Unknown { error } => {
                    tracing::debug!(%key, %error, "step outcome unknown; retrying under the same key");
                    last = error;
                    tokio::time::sleep(backoff(attempt)).await;
                }
            }
        }
        Err(Stop::Parked(format!("{key}: still unknown: {last}")))
    }

    /// Writes the saga state under `token`, retrying an unknown outcome.
    async fn persist(&self, token: u64, rec: &OrderRecord) -> Result<(), Stop> {
        let key = super::order_key(&rec.order_id);
        for attempt in 0..PERSIST_ATTEMPTS {
            self.still_leading(token)?;
            let outcome = self.quorum.write_values(token, &[(key.clone(), rec)]).await;
            if let Some(t) = outcome.fenced_by() {
                self.leader.elector().step_down_below(
                    t,
                    StepDown::WriteFenced,
                    &format!("saga write fenced by token {t}"),
                );
                return Err(Stop::Lost);
            }
            match outcome {
                WriteOutcome::Ok(_) => return Ok(()),
                WriteOutcome::Failed { reason, .. } => return Err(Stop::Parked(reason)),
                WriteOutcome::Unknown { .. } => tokio::time::sleep(backoff(attempt)).await,
            }
        }
        Err(Stop::Parked(format!(
            "saga state of {} not written",
            rec.order_id
        )))
    }

    fn record(rec: &mut OrderRecord, token: u64, step: StepName, outcome: &Definite) {
        let (outcome, detail) = match outcome {
            Definite::Ok => (StepOutcome::Ok, None),
            Definite::Refused(why) => (StepOutcome::Refused, Some(why.clone())),
        };
        rec.steps.push(Step {
            step,
            outcome,
            detail,
            at_unix_ms: now_ms(),
            token,
        });
    }

    fn fail(rec: &mut OrderRecord, why: String) {
        rec.reason = Some(why);
        rec.become_(Status::Compensating);
    }

    /// Drives the saga of `id` under `token` until it ends (Ok) or must stop.
    pub async fn drive(&self, token: u64, id: &str) -> Result<(), Stop> {
        let mut rec: OrderRecord = match self.quorum.read_value(&super::order_key(id)).await {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(()),
            Err(e) => return Err(Stop::Parked(e.to_string())),
        };
        for _ in 0..MAX_TRANSITIONS {
            self.still_leading(token)?;
            match rec.status {
                Status::Accepted => rec.become_(Status::Reserving),
                Status::Reserving => self.reserve(token, &mut rec).await?,
                Status::Charging => {
                    let body = charge_body(&rec);
                    let key = step_key(id, StepName::Charge);
                    let d = self
                        .step(token, &self.payment, "/charge", &key, body)
                        .await?;
                    Self::record(&mut rec, token, StepName::Charge, &d);
                    match d {
                        Definite::Ok => {
                            rec.progress.charged = true;
                            rec.become_(Status::Shipping);
                        }
                        Definite::Refused(why) => Self::fail(&mut rec, why),
                    }
                }
                Status::Shipping => {
                    let key = step_key(id, StepName::Ship);
                    let body = ship_body(&rec);
                    let d = self
                        .step(token, &self.shipping, "/ship", &key, body)
                        .await?;
                    Self::record(&mut rec, token, StepName::Ship, &d);
                    match d {
                        Definite::Ok => {
                            rec.progress.shipped = true;
                            rec.become_(Status::Committing);
                        }
                        Definite::Refused(why) => Self::fail(&mut rec, why),
                    }
                }
                Status::Committing => self.commit(token, &mut rec).await?,
                Status::Compensating => self.compensate(token, &mut rec).await?,
                Status::Completed | Status::Rejected | Status::Compensated => {
                    metrics::counter!("sagas_finished_total", "status" => rec.status.as_str())
                        .increment(1);
                    return Ok(());
                }
            }
            self.persist(token, &rec).await?;
        }
        Err(Stop::Parked(format!(
            "{id}: more than {MAX_TRANSITIONS} transitions"
        )))
    }

    /// Reserves every item not yet reserved; a refusal starts compensation.
    async fn reserve(&self, token: u64, rec: &mut OrderRecord) -> Result<(), Stop> {
        for (i, item) in rec.items.clone().iter().enumerate() {
            if rec.progress.reserved.contains(&i) {
                continue;
            }
            let key = step_key(&rec.order_id, StepName::Reserve(i));
            let body = reserve_body(rec, item);
            let d = self
                .step(token, &self.inventory, "/reserve", &key, body)
                .await?;
            Self::record(rec, token, StepName::Reserve(i), &d);
            match d {
                Definite::Ok => rec.progress.reserved.push(i),
                Definite::Refused(why) => {
                    Self::fail(rec, why);
                    return Ok(());
                }
            }
        }
        rec.become_(Status::Charging);
        Ok(())
    }

    /// Commits every reserved item not yet committed (its stock is taken for good, under the
    /// key `<order>:commit:<i>`, naming the reservation); then the saga is complete. A refusal
    /// (the reservation is not held) starts compensation.
    async fn commit(&self, token: u64, rec: &mut OrderRecord) -> Result<(), Stop> {
        let id = rec.order_id.clone();
        for (i, item) in rec.items.clone().iter().enumerate() {
            if rec.progress.committed.contains(&i) {
                continue;
            }
            let body = commit_body(rec, i, item);
            let key = step_key(&id, StepName::Commit(i));
            let d = self
                .step(token, &self.inventory, "/commit", &key, body)
                .await?;
            Self::record(rec, token, StepName::Commit(i), &d);
            match d {
                Definite::Ok => rec.progress.committed.push(i),
                Definite::Refused(why) => {
                    Self::fail(rec, why);
                    return Ok(());
                }
            }
        }
        rec.become_(Status::Completed);
        Ok(())
    }

    /// Undoes what succeeded, in reverse: cancel shipment, refund, release stock. Each undo
    /// is idempotent, so a resumed compensation simply repeats them all.
    async fn compensate(&self, token: u64, rec: &mut OrderRecord) -> Result<(), Stop> {
        let id = rec.order_id.clone();
        let final_status = if rec.progress.charged {
            Status::Compensated
        } else {
            Status::Rejected
        };
        if !self.compensation {
            let why = rec.reason.clone().unwrap_or_default();
            rec.reason = Some(format!("{why} (compensation disabled: nothing undone)"));
            rec.become_(final_status);
            return Ok(());
        }
        if rec.progress.shipped {
            let body = json!({"order_id": id, "shipment_key": step_key(&id, StepName::Ship)});
            let key = step_key(&id, StepName::CancelShip);
            let d = self
                .step(token, &self.shipping, "/cancel", &key, body)
                .await?;
            Self::record(rec, token, StepName::CancelShip, &d);
        }
        if rec.progress.charged {
            let body = charge_body(rec);
            let key = step_key(&id, StepName::Refund);
            let d = self
                .step(token, &self.payment, "/refund", &key, body)
                .await?;
            Self::record(rec, token, StepName::Refund, &d);
        }
        let to_release: Vec<usize> = rec
            .progress
            .reserved
            .iter()
            .copied()
            .filter(|i| !rec.progress.committed.contains(i))
            .collect();
        for i in to_release.into_iter().rev() {
            let Some(item) = rec.items.get(i).cloned() else {
                continue;
            };
            let body = json!({
                "sku": item.sku, "qty": item.qty, "order_id": id,
                "reservation": step_key(&id, StepName::Reserve(i)),
            });
            let key = step_key(&id, StepName::Release(i));
            let d = self
                .step(token, &self.inventory, "/release", &key, body)
                .await?;
            Self::record(rec, token, StepName::Release(i), &d);
        }
        rec.become_(final_status);
        Ok(())
    }
}
