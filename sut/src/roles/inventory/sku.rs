//! One SKU's state and the pure decisions on it: reserve, release and commit.
//!
//! The whole SKU (stock, reservations, and the entries of every effect on it) is one unit, one
//! store record, so one versioned write changes stock and records together: a partial write
//! from a fenced-out leader is then either seen whole or superseded whole, never half.
//!
//! Stock stays between 0 and the initial stock: a reserve takes at most what is available, a
//! release and a commit name the reservation they act on and must match its quantity, and (with
//! idempotency) act only on a reservation that is still `reserved`, so a release can never
//! return more than its reservation holds. Every sum is checked; none can wrap.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::http::ApiError;
use crate::roles::effect::{Decision, Entries, Entry, Kind, Unit};

/// A reservation's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReservationStatus {
    /// Units held.
    Reserved,
    /// Units taken for good (the saga completed).
    Committed,
    /// Units given back.
    Released,
}

impl ReservationStatus {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            ReservationStatus::Reserved => "reserved",
            ReservationStatus::Committed => "committed",
            ReservationStatus::Released => "released",
        }
    }
}

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
    /// Held, taken or given back.
    pub status: ReservationStatus,
    /// Dedup hits on its key.
    #[serde(default)]
    pub replays: u64,
}

/// A release, in the shape of the checker's `ReleaseRecord`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseRecord {
    /// Idempotency key it was made under.
    pub key: String,
    /// The order (empty for clients that name none).
    pub order_id: String,
    /// SKU.
    pub sku: String,
    /// Units returned.
    pub qty: i64,
    /// The reservation it released.
    pub reservation: String,
    /// Dedup hits on its key.
    pub replays: u64,
}

/// One SKU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkuState {
    /// SKU.
    pub sku: String,
    /// Units at the start.
    pub initial: i64,
    /// Units available now.
    pub available: i64,
    /// Reservations by storage key (the idempotency key).
    pub reservations: BTreeMap<String, Reservation>,
    /// Every reserve, release and commit (and stored refusal) by storage key.
    #[serde(default)]
    pub entries: Entries,
    /// The reservation the last decision acted on (its storage key), to mirror it.
    #[serde(skip)]
    pub touched: Option<String>,
    /// Homes merged from their archive records ([`super::archive`]), which the SKU record does
    /// not hold.
    #[serde(skip)]
    pub archived: BTreeSet<String>,
}

impl Unit for SkuState {
    fn entries(&self) -> &Entries {
        &self.entries
    }
    fn entries_mut(&mut self) -> &mut Entries {
        &mut self.entries
    }
}

/// Body of `POST /reserve`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReserveRequest {
    /// SKU.
    pub sku: String,
    /// Units, 1 to [`MAX_QTY_UNITS`](crate::limits::MAX_QTY_UNITS).
    pub qty: i64,
    /// The order, if any.
    #[serde(default)]
    pub order_id: String,
}

/// Body of `POST /release` and `POST /commit`: the reservation acted on, and its SKU and units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettleRequest {
    /// SKU.
    pub sku: String,
    /// Units: the reservation's.
    pub qty: i64,
    /// The order, if any.
    #[serde(default)]
    pub order_id: String,
    /// Key of the reservation released or committed (required).
    #[serde(default)]
    pub reservation: Option<String>,
}

/// A request to the inventory ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Request {
    /// Release or commit (listed first: it has the extra field).
    Settle(SettleRequest),
    /// Reserve.
    Reserve(ReserveRequest),
}

impl Request {
    /// Its SKU.
    pub fn sku(&self) -> &str {
        match self {
            Request::Settle(r) => &r.sku,
            Request::Reserve(r) => &r.sku,
        }
    }
}

fn insufficient(sku: &str, qty: i64, available: i64) -> ApiError {
    ApiError::unprocessable(
        "insufficient_stock",
        format!("sku {sku}: {qty} asked, {available} available"),
    )
    .with("available", available.into())
}

fn overflow(sku: &str, what: &str) -> ApiError {
    ApiError::unprocessable("stock_overflow", format!("sku {sku}: {what}"))
}

impl SkuState {
    /// A SKU nobody has touched.
    pub fn fresh(sku: &str, initial: i64) -> SkuState {
        SkuState {
            sku: sku.to_owned(),
            initial,
            available: initial,
            reservations: BTreeMap::new(),
            entries: Entries::new(),
            touched: None,
            archived: BTreeSet::new(),
        }
    }

    /// Decides `req` of `kind` under `storage_key`; `strict` (idempotency on) lets a release or
    /// commit act only on a reservation that is still reserved.
    pub fn decide(
        &mut self,
        kind: Kind,
        key: &str,
        storage_key: &str,
        req: &Request,
        strict: bool,
    ) -> Result<Decision, ApiError> {
        self.touched = None;
        match (kind, req) {
            (Kind::Reserve, Request::Reserve(r)) => Ok(self.reserve(key, storage_key, r)),
            (Kind::Release | Kind::Commit, Request::Settle(r)) => self.settle(kind, r, strict),
            _ => Err(ApiError::bad_request(
                "bad_request",
                format!("a {} request has the wrong body", kind.label()),
            )),
        }
    }

    fn reserve(&mut self, key: &str, storage_key: &str, req: &ReserveRequest) -> Decision {
        let Some(left) = self
            .available
            .checked_sub(req.qty)
            .filter(|left| *left >= 0)
        else {
            return Decision::Refused(insufficient(&self.sku, req.qty, self.available));
        };
        self.available = left;
        assert!(
            (0..=self.initial).contains(&self.available),
            "sku {}: stock {} outside 0..={}",
            self.sku,
            self.available,
            self.initial
        );
        self.reservations.insert(
            storage_key.to_owned(),
            Reservation {
                key: key.to_owned(),
                order_id: req.order_id.clone(),
                sku: self.sku.clone(),
                qty: req.qty,
                status: ReservationStatus::Reserved,
                replays: 0,
            },
        );
        self.touched = Some(storage_key.to_owned());
        Decision::Applied { names: None }
    }

    /// The storage key of the reservation made under `key` (without idempotency there may be
    /// several: the first still reserved).
    fn find(&self, key: &str) -> Option<String> {
        if self.reservations.contains_key(key) {
            return Some(key.to_owned());
        }
        self.reservations
            .iter()
            .filter(|(_, r)| r.key == key)
            .min_by_key(|(_, r)| r.status != ReservationStatus::Reserved)
            .map(|(k, _)| k.clone())
    }

    fn settle(
        &mut self,
        kind: Kind,
        req: &SettleRequest,
        strict: bool,
    ) -> Result<Decision, ApiError> {
        let Some(named) = req.reservation.as_deref() else {
            return Err(ApiError::bad_request(
                "reservation_required",
                format!("a {} names the reservation it acts on", kind.label()),
            ));
        };
        let Some(sk) = self.find(named) else {
            return Err(ApiError::unprocessable(
                "no_reservation",
                format!("sku {}: no reservation under key {named:?}", self.sku),
            ));
        };
        let sku = self.sku.clone();
        let r = self
            .reservations
            .get_mut(&sk)
            .ok_or_else(|| ApiError::internal("reservation vanished"))?;
        if r.qty != req.qty || r.order_id != req.order_id {
            return Err(ApiError::unprocessable(
                "reservation_mismatch",
                format!(
                    "reservation {named:?} holds {} units for order {:?}, the {} names {} for {:?}",
                    r.qty,
                    r.order_id,
                    kind.label(),
                    req.qty,
                    req.order_id
                ),
            ));
        }
        if strict && r.status != ReservationStatus::Reserved {
            return Err(ApiError::unprocessable(
                "not_reserved",
                format!("reservation {named:?} is already {}", r.status.as_str()),
            ));
        }
        if kind == Kind::Commit {
            r.status = ReservationStatus::Committed;
        } else {
            let back = self
                .available
                .checked_add(r.qty)
                .filter(|n| *n <= self.initial)
                .ok_or_else(|| overflow(&sku, "the release would pass the initial stock"))?;
            r.status = ReservationStatus::Released;
            self.available = back;
        }
        self.touched = Some(sk);
        Ok(Decision::Applied {
            names: Some(named.to_owned()),
        })
    }

    /// Its reservations with their cursors, each with the replays of its key.
    pub fn reservation_records(&self) -> Vec<(String, Reservation)> {
        self.reservations
            .iter()
            .map(|(sk, r)| {
                let mut r = r.clone();
                r.replays = self.entries.get(sk).map_or(0, |e| e.replays);
                (format!("{}/{sk}", self.sku), r)
            })
            .collect()
    }

    /// Its applied releases with their cursors.
    pub fn release_records(&self) -> Vec<(String, ReleaseRecord)> {
        self.entries
            .iter()
            .filter(|(_, e)| e.kind == Kind::Release && e.applied())
            .filter_map(|(sk, e)| {
                let req: SettleRequest = serde_json::from_value(e.request.clone()).ok()?;
                Some((
                    format!("{}/{sk}", self.sku),
                    ReleaseRecord {
                        key: e.key.clone(),
                        order_id: req.order_id,
                        sku: self.sku.clone(),
                        qty: req.qty,
                        reservation: e.names.clone().or(req.reservation)?,
                        replays: e.replays,
                    },
                ))
            })
            .collect()
    }

    /// The answer body of an effect.
    pub fn view(&self, storage_key: &str, entry: &Entry) -> serde_json::Value {
        let reservation = match entry.kind {
            Kind::Reserve => self.reservations.get(storage_key),
            _ => entry
                .names
                .as_deref()
                .and_then(|n| self.find(n))
                .and_then(|sk| self.reservations.get(&sk)),
        };
        serde_json::json!({
            "kind": entry.kind,
            "reservation": reservation,
            "available": self.available,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reserve(qty: i64) -> Request {
        Request::Reserve(ReserveRequest {
            sku: "s".into(),
            qty,
            order_id: "o".into(),
        })
    }

    fn settle(reservation: Option<&str>, qty: i64) -> Request {
        Request::Settle(SettleRequest {
            sku: "s".into(),
            qty,
            order_id: "o".into(),
            reservation: reservation.map(str::to_owned),
        })
    }

    fn applied(d: Result<Decision, ApiError>) -> bool {
        matches!(d, Ok(Decision::Applied { .. }))
    }

    fn code(d: Result<Decision, ApiError>) -> &'static str {
        match d {
            Ok(Decision::Refused(e)) | Err(e) => e.code,
            Ok(Decision::Applied { .. }) => "applied",
        }
    }

    /// Proves stock never goes below zero or above its initial amount: a reserve takes at most
    /// what is available (a refusal otherwise), a release names its reservation, must match its
    /// units and returns them once, a commit takes a reservation for good, and nothing acts on
    /// a released or committed reservation again.
    #[test]
    fn reserve_release_commit_rules() {
        let mut s = SkuState::fresh("s", 3);
        assert!(applied(s.decide(
            Kind::Reserve,
            "a",
            "a",
            &reserve(2),
            true
        )));
        assert_eq!(s.available, 1);
        assert_eq!(
            code(s.decide(Kind::Reserve, "b", "b", &reserve(2), true)),
            "insufficient_stock"
        );
        assert_eq!(
            code(s.decide(Kind::Reserve, "m", "m", &reserve(i64::MAX), true)),
            "insufficient_stock",
            "no subtraction wraps"
        );
        assert_eq!(
            code(s.decide(Kind::Release, "r0", "r0", &settle(None, 2), true)),
            "reservation_required"
        );
        assert_eq!(
            code(s.decide(Kind::Release, "r0", "r0", &settle(Some("zz"), 2), true)),
            "no_reservation"
        );
        assert_eq!(
            code(s.decide(
                Kind::Release,
                "r0",
                "r0",
                &settle(Some("a"), i64::MAX),
                true
            )),
            "reservation_mismatch"
        );
        assert_eq!(s.available, 1, "refusals changed nothing");
        assert!(applied(s.decide(
            Kind::Release,
            "r1",
            "r1",
            &settle(Some("a"), 2),
            true
        )));
        assert_eq!(s.available, 3);
        assert_eq!(
            code(s.decide(Kind::Release, "r2", "r2", &settle(Some("a"), 2), true)),
            "not_reserved"
        );
        assert_eq!(
            code(s.decide(Kind::Commit, "c1", "c1", &settle(Some("a"), 2), true)),
            "not_reserved"
        );
        assert_eq!(s.available, 3, "a reservation is released once");
        assert!(applied(s.decide(
            Kind::Reserve,
            "c",
            "c",
            &reserve(3),
            true
        )));
        assert!(applied(s.decide(
            Kind::Commit,
            "c2",
            "c2",
            &settle(Some("c"), 3),
            true
        )));
        assert_eq!(s.reservations["c"].status, ReservationStatus::Committed);
        assert_eq!(
            code(s.decide(Kind::Release, "r3", "r3", &settle(Some("c"), 3), true)),
            "not_reserved",
            "committed stock is not given back"
        );
        assert_eq!(s.available, 0);
    }

    /// Proves that without idempotency (`strict` off) a repeated release returns its units
    /// again, the over-release the checker must see, but never past the initial stock.
    #[test]
    fn without_idempotency_a_release_repeats_within_the_initial_stock() {
        let mut s = SkuState::fresh("s", 5);
        assert!(applied(s.decide(
            Kind::Reserve,
            "a",
            "a#1",
            &reserve(2),
            false
        )));
        assert!(applied(s.decide(
            Kind::Reserve,
            "b",
            "b#2",
            &reserve(2),
            false
        )));
        assert_eq!(s.available, 1);
        assert!(applied(s.decide(
            Kind::Release,
            "r",
            "r#3",
            &settle(Some("a"), 2),
            false
        )));
        assert!(applied(s.decide(
            Kind::Release,
            "r",
            "r#4",
            &settle(Some("a"), 2),
            false
        )));
        assert_eq!(
            s.available, 5,
            "the second release returned units it did not hold"
        );
        assert_eq!(
            code(s.decide(Kind::Release, "r", "r#5", &settle(Some("a"), 2), false)),
            "stock_overflow"
        );
        assert_eq!(s.available, 5);
    }
}
