//! The effects check over copies of a real recorded run directory (`tests/fixtures/effects-mixed`:
//! a `harness run --workload mixed` with a shipping failure rate, so it holds completed
//! and compensated orders, order and stock-workload reservations and releases). The
//! run as recorded is valid; each case changes one record of a copy the way a real bug would
//! (a wrong amount, a lost or doubled record, a leaked unit, a status that moved) and asserts
//! that exactly its kind fires, with at most the kinds the same bug necessarily implies.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use formats::effects::EffectViolation as V;
use formats::final_state::{
    FinalState, OrderRecord, OrderStatus, PaymentRecord, ReservationRecord, ReservationStatus,
};
use serde_json::{json, Value};

use checker::Validity;

/// A copy of a recorded run under `tests/fixtures/`: its final state typed, its history as JSON
/// lines.
pub struct Copy {
    dir: PathBuf,
    pub state: FinalState,
    history: Vec<Value>,
}

impl Copy {
    /// A copy of `effects-mixed`, the recorded run these cases corrupt.
    fn load() -> Copy {
        Copy::of("effects-mixed")
    }

    /// A copy of the recorded run `tests/fixtures/<name>`.
    pub fn of(name: &str) -> Copy {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name);
        let state: FinalState = serde_json::from_slice(
            &std::fs::read(dir.join("final-state.json")).expect("final-state.json"),
        )
        .expect("final state parses");
        let history = std::fs::read_to_string(dir.join("history.jsonl"))
            .expect("history.jsonl")
            .lines()
            .map(|l| serde_json::from_str(l).expect("history line parses"))
            .collect();
        Copy {
            dir,
            state,
            history,
        }
    }

    /// The effects check of this copy, written as a run directory and read back.
    pub fn check(&self) -> checker::Verdict<checker::checks::effects::Details> {
        let tmp = tempfile::tempdir().expect("tempdir");
        std::fs::copy(self.dir.join("spec.json"), tmp.path().join("spec.json")).expect("spec");
        let state = serde_json::to_vec_pretty(&self.state).expect("serializes");
        std::fs::write(tmp.path().join("final-state.json"), state).expect("writes");
        let lines: Vec<String> = self.history.iter().map(Value::to_string).collect();
        std::fs::write(tmp.path().join("history.jsonl"), lines.join("\n") + "\n").expect("writes");
        let data = checker::RunData::load(tmp.path()).expect("loads");
        checker::checks::effects::check(&data.history, &data.final_state)
    }

    fn order_with(&self, status: OrderStatus) -> OrderRecord {
        self.state
            .orders
            .iter()
            .find(|o| o.status == status && !o.items.is_empty())
            .unwrap_or_else(|| panic!("the recorded run has a {status} order with items"))
            .clone()
    }

    fn payment(&mut self, key: &str) -> &mut PaymentRecord {
        self.state
            .payments
            .iter_mut()
            .find(|p| p.key == key)
            .unwrap_or_else(|| panic!("payment {key}"))
    }

    fn reservation_of(&self, order: &str) -> ReservationRecord {
        self.state
            .reservations
            .iter()
            .find(|r| r.order_id == order)
            .unwrap_or_else(|| panic!("a reservation of {order}"))
            .clone()
    }

    fn available(&mut self, sku: &str) -> &mut i64 {
        &mut self
            .state
            .stock
            .iter_mut()
            .find(|s| s.sku == sku)
            .unwrap_or_else(|| panic!("stock of {sku}"))
            .available
    }
}

/// Changes one record of a fresh copy, then asserts `kind` fires and nothing outside `allowed`.
fn corrupt(kind: V, allowed: &[V], change: impl FnOnce(&mut Copy)) {
    let mut copy = Copy::load();
    change(&mut copy);
    assert_flags(&copy, kind, allowed);
}

/// Asserts the effects check of `copy` is invalid with `kind`, and nothing outside `allowed`.
pub fn assert_flags(copy: &Copy, kind: V, allowed: &[V]) {
    let v = copy.check();
    let kinds: BTreeSet<V> = v.details.violation_counts.keys().copied().collect();
    assert!(kinds.contains(&kind), "{kind} not flagged: {kinds:?}");
    let extra: Vec<&V> = kinds
        .iter()
        .filter(|k| **k != kind && !allowed.contains(k))
        .collect();
    assert!(
        extra.is_empty(),
        "{kind}: unexpected kinds {extra:?}: {v:#?}"
    );
    assert_eq!(v.validity, Validity::Invalid, "{kind}");
}

/// Proves the recorded run is valid as it stands, holds every kind of record the corruptions
/// below change, and that every completed order's stock is committed.
#[test]
fn the_recorded_run_is_valid() {
    let copy = Copy::load();
    let v = copy.check();
    assert_eq!(v.validity, Validity::Valid, "{v:#?}");
    for status in [OrderStatus::Completed, OrderStatus::Compensated] {
        assert!(
            v.details.by_status.get(&status).copied().unwrap_or(0) > 0,
            "{status}"
        );
    }
    assert!(v.details.release_records > 0);
    assert!(copy
        .state
        .reservations
        .iter()
        .any(|r| r.order_id.is_empty()));
    let completed: BTreeSet<&str> = copy
        .state
        .orders
        .iter()
        .filter(|o| o.status == OrderStatus::Completed)
        .map(|o| o.order_id.as_str())
        .collect();
    for r in copy
        .state
        .reservations
        .iter()
        .filter(|r| completed.contains(r.order_id.as_str()))
    {
        assert_eq!(r.status, ReservationStatus::Committed, "{}", r.key);
    }
}

/// Proves a charge of another amount than its order's (a rounding or currency bug) is
/// `charge-amount-mismatch`.
#[test]
fn wrong_charge_amount() {
    corrupt(V::ChargeAmountMismatch, &[], |c| {
        let o = c.order_with(OrderStatus::Completed);
        c.payment(&format!("{}:charge", o.order_id)).amount -= 1;
    });
}

/// Proves a refund that forgot which charge it gives back is `refund-not-linked`.
#[test]
fn refund_without_its_charge_named() {
    corrupt(V::RefundNotLinked, &[], |c| {
        let o = c.order_with(OrderStatus::Compensated);
        c.payment(&format!("{}:refund", o.order_id)).charge = None;
    });
}

/// Proves an order that ended `rejected` although its charge had landed (and was refunded: it
/// must end `compensated`) is `rejected-but-charged`. (A client that read it compensated also
/// saw a terminal status change.)
#[test]
fn charged_order_marked_rejected() {
    corrupt(V::RejectedButCharged, &[V::TerminalStatusChanged], |c| {
        let id = c.order_with(OrderStatus::Compensated).order_id;
        c.state
            .orders
            .iter_mut()
            .find(|o| o.order_id == id)
            .expect("order")
            .status = OrderStatus::Rejected;
    });
}

/// Proves a completed order's reservation lost from the ledger while its units stay taken is
/// `missing-reservation` (and the units it held are unaccounted: `stock-not-conserved`).
#[test]
fn lost_reservation() {
    corrupt(V::MissingReservation, &[V::StockNotConserved], |c| {
        let o = c.order_with(OrderStatus::Completed);
        let r = c.reservation_of(&o.order_id);
        c.state.reservations.retain(|x| x.key != r.key);
    });
}

/// Proves one item reserved twice (two nodes both applied the key) is `double-reservation`,
/// also when the stock it took is accounted.
#[test]
fn doubled_reservation() {
    corrupt(V::DoubleReservation, &[], |c| {
        let o = c.order_with(OrderStatus::Completed);
        let r = c.reservation_of(&o.order_id);
        *c.available(&r.sku) -= r.qty;
        c.state.reservations.push(r);
    });
}

/// Proves a reservation of another quantity than its item's is `reservation-mismatch`.
#[test]
fn reservation_of_wrong_quantity() {
    corrupt(V::ReservationMismatch, &[], |c| {
        let o = c.order_with(OrderStatus::Completed);
        let key = c.reservation_of(&o.order_id).key;
        let sku = {
            let r = c
                .state
                .reservations
                .iter_mut()
                .find(|x| x.key == key)
                .expect("reservation");
            r.qty += 1;
            r.sku.clone()
        };
        *c.available(&sku) -= 1;
    });
}

/// Proves a shipment stored under a key the pipeline does not derive for its order is
/// `wrong-effect-key`.
#[test]
fn effect_under_a_foreign_key() {
    corrupt(V::WrongEffectKey, &[], |c| {
        let o = c.order_with(OrderStatus::Completed);
        let s = c
            .state
            .shipments
            .iter_mut()
            .find(|s| s.order_id == o.order_id)
            .expect("shipment");
        s.key = format!("{}:shipment", o.order_id);
    });
}

/// Proves an order no client placed (the place-order operations of its key removed from the
/// history) is `order-not-placed`.
#[test]
fn order_nobody_placed() {
    corrupt(V::OrderNotPlaced, &[], |c| {
        let o = c.order_with(OrderStatus::Completed);
        let key = o.idempotency_key.clone();
        let placing: BTreeSet<u64> = c
            .history
            .iter()
            .filter(|op| op["f"] == "place-order" && op["value"]["key"] == key.as_str())
            .filter_map(|op| op["process"].as_u64())
            .collect();
        assert!(!placing.is_empty());
        c.history
            .retain(|op| !(op["f"] == "place-order" && op["value"]["key"] == key.as_str()));
        renumber(&mut c.history);
    });
}

/// Proves an order stored with another amount than its client placed (the charge following
/// it) is `order-payload-mismatch`.
#[test]
fn order_stored_with_another_amount() {
    corrupt(V::OrderPayloadMismatch, &[], |c| {
        let o = c.order_with(OrderStatus::Completed);
        let id = o.order_id.clone();
        c.state
            .orders
            .iter_mut()
            .find(|x| x.order_id == id)
            .expect("order")
            .amount += 1;
        c.payment(&format!("{id}:charge")).amount += 1;
    });
}

/// Proves two orders for one idempotency key (two nodes both accepted it; the second was
/// rejected and holds nothing) are `double-order`.
#[test]
fn one_key_two_orders() {
    corrupt(V::DoubleOrder, &[], |c| {
        let mut twin = c.order_with(OrderStatus::Completed);
        twin.order_id = format!("{}-twin", twin.order_id);
        twin.status = OrderStatus::Rejected;
        c.state.orders.push(twin);
    });
}

/// Proves a second shipment for one order (two shipping nodes both created it) is
/// `double-shipment`.
#[test]
fn doubled_shipment() {
    corrupt(V::DoubleShipment, &[], |c| {
        let o = c.order_with(OrderStatus::Completed);
        let s = c
            .state
            .shipments
            .iter()
            .find(|s| s.order_id == o.order_id)
            .expect("shipment")
            .clone();
        c.state.shipments.push(s);
    });
}

/// Proves a stock-workload reservation under a key no stock client used is
/// `unrequested-effect`.
#[test]
fn reservation_nobody_asked_for() {
    corrupt(V::UnrequestedEffect, &[], |c| {
        let mut r = c
            .state
            .reservations
            .iter()
            .find(|r| r.order_id.is_empty())
            .expect("a stock-workload reservation")
            .clone();
        r.key = "st-p999-0".into();
        r.status = ReservationStatus::Reserved;
        *c.available(&r.sku) -= r.qty;
        c.state.reservations.push(r);
    });
}

/// Proves a unit leaked (available one below what the reservations account for) is
/// `stock-not-conserved`.
#[test]
fn leaked_unit() {
    corrupt(V::StockNotConserved, &[], |c| {
        c.state.stock[0].available -= 1;
    });
}

/// Proves an oversold SKU (available below zero) is `negative-stock` (its units are then also
/// unaccounted).
#[test]
fn oversold_sku() {
    corrupt(V::NegativeStock, &[V::StockNotConserved], |c| {
        let s = &mut c.state.stock[0];
        s.available = -1;
    });
}

/// Proves one release key applied twice (two nodes both gave the units back) is `over-release`:
/// two releases of one released reservation, returning more units than it held.
#[test]
fn released_twice() {
    corrupt(V::OverRelease, &[V::StockNotConserved], |c| {
        let rel = c
            .state
            .releases
            .iter()
            .find(|r| r.order_id.is_empty())
            .expect("a stock-workload release")
            .clone();
        *c.available(&rel.sku) += rel.qty;
        c.state.releases.push(rel);
    });
}

/// Proves a charge whose amount wrapped negative is `bad-amount` (and of course not the
/// order's amount).
#[test]
fn wrapped_amount() {
    corrupt(V::BadAmount, &[V::ChargeAmountMismatch], |c| {
        let o = c.order_with(OrderStatus::Completed);
        c.payment(&format!("{}:charge", o.order_id)).amount = -o.amount;
    });
}

/// Proves a terminal status a client read that differs from the end status (the order moved
/// after it was reported final) is `terminal-status-changed`.
#[test]
fn terminal_status_moved() {
    corrupt(V::TerminalStatusChanged, &[], |c| {
        let o = c.order_with(OrderStatus::Compensated);
        let read = c.history.iter_mut().find(|op| {
            op["f"] == "read-order"
                && op["type"] == "ok"
                && op["value"]["order_id"] == o.order_id.as_str()
        });
        match read {
            Some(op) => op["value"]["status"] = json!("completed"),
            None => panic!("the recorded run read {} at least once", o.order_id),
        }
    });
}

/// Proves a completed order whose stock was left reserved (the commit step never ran) is
/// `stock-not-committed`.
#[test]
fn completed_but_not_committed() {
    corrupt(V::StockNotCommitted, &[], |c| {
        let o = c.order_with(OrderStatus::Completed);
        let key = c.reservation_of(&o.order_id).key;
        c.state
            .reservations
            .iter_mut()
            .find(|x| x.key == key)
            .expect("reservation")
            .status = ReservationStatus::Reserved;
    });
}

/// Proves a charge applied twice under one key (two payment nodes both applied it) is
/// `double-charge`.
#[test]
fn doubled_charge() {
    corrupt(V::DoubleCharge, &[], |c| {
        let o = c.order_with(OrderStatus::Completed);
        let p = c.payment(&format!("{}:charge", o.order_id)).clone();
        c.state.payments.push(p);
    });
}

/// Proves a compensated order whose reservation was never released is `stock-not-released`.
#[test]
fn compensation_kept_stock() {
    corrupt(
        V::StockNotReleased,
        &[V::StockNotConserved, V::OverRelease],
        |c| {
            let o = c.order_with(OrderStatus::Compensated);
            let r = c.reservation_of(&o.order_id);
            c.state.releases.retain(|x| x.reservation != r.key);
            let x = c
                .state
                .reservations
                .iter_mut()
                .find(|x| x.key == r.key)
                .expect("reservation");
            x.status = ReservationStatus::Reserved;
            *c.available(&r.sku) -= r.qty;
        },
    );
}

/// Proves a payment ledger whose read failed (every node timed out, as in a 30-minute soak's
/// final read) makes the check unknown, not invalid: the orders' charges are not judged
/// against a ledger that was not read. Its twin, the same empty ledger listed as read, is
/// every completed and compensated order's `lost-charge`.
#[test]
fn unread_payment_ledger_is_unknown_not_lost_charges() {
    let mut copy = Copy::load();
    copy.state.payments.clear();
    let twin = copy.check();
    assert_eq!(twin.validity, Validity::Invalid);
    assert!(
        twin.details.violation_counts.contains_key(&V::LostCharge),
        "{twin:#?}"
    );
    copy.state.services.retain(|r| *r != formats::Role::Payment);
    copy.state
        .read_errors
        .push("payment /admin/ledger: n1: operation timed out".into());
    let v = copy.check();
    assert_eq!(v.validity, Validity::Unknown, "{v:#?}");
    assert!(
        v.details.violation_counts.is_empty(),
        "{:?}",
        v.details.violation_counts
    );
}

/// Renumbers history indexes after operations were removed (indexes are dense).
fn renumber(history: &mut [Value]) {
    for (i, op) in history.iter_mut().skip(1).enumerate() {
        op["index"] = json!(i);
    }
}
