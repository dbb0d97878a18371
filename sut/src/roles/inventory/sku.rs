//! One SKU's state and the pure decisions on it: reserve and release under idempotency keys.
//!
//! The whole SKU (stock, reservations, refusals, releases) is one store record, so one
//! versioned write changes stock and records together: a partial write from a fenced-out
//! leader is then either seen whole or superseded whole, never half.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::http::ApiError;

/// Operations one SKU record holds at most (a bound on the record's size).
pub const MAX_OPS_PER_SKU: usize = 50_000;

/// A reservation, in the shape of the checker's `ReservationRecord` (plus `replays`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    /// Idempotency key it was made under.
    pub key: String,
    /// The order (empty for clients that name none).
    pub order_id: String,
    /// SKU.
    pub sku: String,
    /// Units.
    pub qty: i64,
    /// `reserved` or `released`.
    pub status: String,
    /// Dedup hits.
    #[serde(default)]
    pub replays: u64,
}

/// A reserve refused for lack of stock, kept so a retry gets the same answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// The order.
    pub order_id: String,
    /// Units asked.
    pub qty: i64,
    /// Units available then.
    pub available: i64,
    /// Dedup hits.
    pub replays: u64,
}

/// A release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    /// The order.
    pub order_id: String,
    /// Units returned.
    pub qty: i64,
    /// The reservation it released, if it named one.
    pub reservation: Option<String>,
    /// Whether stock changed (false if the reservation was already released).
    pub effective: bool,
    /// Dedup hits.
    pub replays: u64,
}

/// One SKU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkuState {
    /// SKU.
    pub sku: String,
    /// Units at the start.
    pub initial: i64,
    /// Units available now.
    pub available: i64,
    /// Reservations by storage key (the idempotency key).
    pub reservations: BTreeMap<String, Reservation>,
    /// Refused reserves by key.
    pub refusals: BTreeMap<String, Refusal>,
    /// Releases by key.
    pub releases: BTreeMap<String, Release>,
}

/// Body of `POST /reserve`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReserveRequest {
    /// SKU.
    pub sku: String,
    /// Units, at least 1.
    pub qty: i64,
    /// The order, if any.
    #[serde(default)]
    pub order_id: String,
}

/// Body of `POST /release`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseRequest {
    /// SKU.
    pub sku: String,
    /// Units, at least 1.
    pub qty: i64,
    /// The order, if any.
    #[serde(default)]
    pub order_id: String,
    /// Key of the reservation to release; without it units simply return to stock.
    #[serde(default)]
    pub reservation: Option<String>,
}

/// What a decision did: the answer, and whether the state changed (must be written).
pub type Decided = (StatusCode, serde_json::Value, bool);

fn reused(key: &str) -> ApiError {
    ApiError::unprocessable(
        "idempotency_key_reused",
        format!("key {key:?} was used for another request"),
    )
}

fn insufficient(sku: &str, qty: i64, available: i64) -> ApiError {
    ApiError::unprocessable(
        "insufficient_stock",
        format!("sku {sku}: {qty} asked, {available} available"),
    )
    .with("available", available.into())
}

impl SkuState {
    /// A SKU nobody has touched.
    pub fn fresh(sku: &str, initial: i64) -> SkuState {
        SkuState {
            sku: sku.to_owned(),
            initial,
            available: initial,
            reservations: BTreeMap::new(),
            refusals: BTreeMap::new(),
            releases: BTreeMap::new(),
        }
    }

    fn ops(&self) -> usize {
        self.reservations.len() + self.refusals.len() + self.releases.len()
    }

    fn check_room(&self) -> Result<(), ApiError> {
        if self.ops() >= MAX_OPS_PER_SKU {
            return Err(ApiError::overloaded(format!(
                "sku {} holds {MAX_OPS_PER_SKU} operations",
                self.sku
            )));
        }
        Ok(())
    }

    /// Reserves `req.qty` under `key`; `storage_key` differs from `key` only without
    /// idempotency. Insufficient stock is a definite 422 that is stored under the key.
    pub fn reserve(
        &mut self,
        key: &str,
        storage_key: &str,
        req: &ReserveRequest,
        idempotency: bool,
    ) -> Result<Decided, ApiError> {
        if idempotency {
            if let Some(r) = self.reservations.get_mut(key) {
                if r.order_id != req.order_id || r.qty != req.qty {
                    return Err(reused(key));
                }
                r.replays += 1;
                let body = json!({"reservation": r, "replayed": true});
                return Ok((StatusCode::OK, body, true));
            }
            if let Some(f) = self.refusals.get_mut(key) {
                if f.order_id != req.order_id || f.qty != req.qty {
                    return Err(reused(key));
                }
                f.replays += 1;
                let (qty, available) = (f.qty, f.available);
                return Ok((
                    StatusCode::UNPROCESSABLE_ENTITY,
                    error_body(insufficient(&self.sku, qty, available)),
                    true,
                ));
            }
            if self.releases.contains_key(key) {
                return Err(reused(key));
            }
        }
        self.check_room()?;
        if self.available < req.qty {
            let refusal = Refusal {
                order_id: req.order_id.clone(),
                qty: req.qty,
                available: self.available,
                replays: 0,
            };
            self.refusals.insert(storage_key.to_owned(), refusal);
            return Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                error_body(insufficient(&self.sku, req.qty, self.available)),
                true,
            ));
        }
        self.available -= req.qty;
        assert!(
            self.available >= 0,
            "sku {}: stock went negative ({})",
            self.sku,
            self.available
        );
        let r = Reservation {
            key: key.to_owned(),
            order_id: req.order_id.clone(),
            sku: self.sku.clone(),
            qty: req.qty,
            status: "reserved".into(),
            replays: 0,
        };
        let body = json!({"reservation": r, "replayed": false, "available": self.available});
        self.reservations.insert(storage_key.to_owned(), r);
        Ok((StatusCode::CREATED, body, true))
    }

    /// Releases under `key`: the named reservation (once), or plain units back to stock.
    pub fn release(
        &mut self,
        key: &str,
        storage_key: &str,
        req: &ReleaseRequest,
        idempotency: bool,
    ) -> Result<Decided, ApiError> {
        if idempotency {
            if let Some(op) = self.releases.get_mut(key) {
                if op.order_id != req.order_id
                    || op.qty != req.qty
                    || op.reservation != req.reservation
                {
                    return Err(reused(key));
                }
                op.replays += 1;
                let body = json!({"release": op, "replayed": true});
                return Ok((StatusCode::OK, body, true));
            }
            if self.reservations.contains_key(key) || self.refusals.contains_key(key) {
                return Err(reused(key));
            }
        }
        self.check_room()?;
        let mut effective = true;
        if let Some(rk) = &req.reservation {
            let Some(r) = self.reservations.get_mut(rk) else {
                return Err(ApiError::unprocessable(
                    "no_reservation",
                    format!("sku {}: no reservation under key {rk:?}", self.sku),
                ));
            };
            if r.qty != req.qty {
                return Err(ApiError::unprocessable(
                    "release_mismatch",
                    format!(
                        "reservation {rk:?} holds {} units, release names {}",
                        r.qty, req.qty
                    ),
                ));
            }
            effective = r.status == "reserved";
            r.status = "released".into();
        }
        if effective {
            self.available += req.qty;
        }
        let op = Release {
            order_id: req.order_id.clone(),
            qty: req.qty,
            reservation: req.reservation.clone(),
            effective,
            replays: 0,
        };
        let body = json!({"release": op, "replayed": false, "available": self.available});
        self.releases.insert(storage_key.to_owned(), op);
        Ok((StatusCode::CREATED, body, true))
    }
}

fn error_body(e: ApiError) -> serde_json::Value {
    let mut body = e.details.unwrap_or_default();
    body.insert("error".into(), json!(e.code));
    body.insert("message".into(), json!(e.message));
    serde_json::Value::Object(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reserve(qty: i64) -> ReserveRequest {
        ReserveRequest {
            sku: "s".into(),
            qty,
            order_id: "o".into(),
        }
    }

    /// Proves stock never goes below zero, a refusal is stored and replayed, a repeat key is a
    /// replay, a reused key with another payload is refused, and a release happens once.
    #[test]
    fn reserve_and_release_rules() {
        let mut s = SkuState::fresh("s", 3);
        assert_eq!(
            s.reserve("a", "a", &reserve(2), true).expect("a").0,
            StatusCode::CREATED
        );
        assert_eq!(
            s.reserve("a", "a", &reserve(2), true).expect("a").0,
            StatusCode::OK
        );
        assert!(
            s.reserve("a", "a", &reserve(1), true).is_err(),
            "reused key"
        );
        let (st, body, _) = s.reserve("b", "b", &reserve(2), true).expect("b");
        assert_eq!(
            (st, body["error"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("insufficient_stock"))
        );
        assert_eq!(s.available, 1);
        let rel = ReleaseRequest {
            sku: "s".into(),
            qty: 2,
            order_id: "o".into(),
            reservation: Some("a".into()),
        };
        s.release("r1", "r1", &rel, true).expect("release");
        assert_eq!(s.available, 3);
        s.release("r2", "r2", &rel, true)
            .expect("second release of the same reservation");
        assert_eq!(s.available, 3, "a reservation is released once");
        let (st, body, _) = s.reserve("b", "b", &reserve(2), true).expect("b replay");
        assert_eq!(
            (st, body["error"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("insufficient_stock")),
            "a stored refusal is replayed"
        );
        assert_eq!(s.reservations["a"].status, "released");
    }
}
