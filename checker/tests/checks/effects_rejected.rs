//! The effects check over copies of a real recorded run whose orders ran out of stock
//! (`tests/fixtures/rejected-orders`: `harness run --nemesis none --order-stock 20`, so that
//! from some point on the reserve step is refused and orders end `rejected`). The run as
//! recorded is valid; each case changes one record of a copy the way a real bug would (a
//! charge, a reservation or a shipment that landed for an order the saga then rejected) and
//! asserts that its kind fires.

use std::collections::BTreeSet;

use formats::effects::EffectViolation as V;
use formats::final_state::{
    OrderRecord, OrderStatus, PaymentKind, PaymentRecord, ReservationRecord, ReservationStatus,
    ShipmentRecord, ShipmentStatus,
};

use checker::Validity;

use super::effects_real::{assert_flags, Copy};

const FIXTURE: &str = "rejected-orders";

/// Orders the recorded run rejected, at least; it rejected more than that.
const MIN_REJECTED: usize = 50;

fn rejected(copy: &Copy) -> OrderRecord {
    copy.state
        .orders
        .iter()
        .find(|o| o.status == OrderStatus::Rejected && !o.items.is_empty())
        .expect("the recorded run has a rejected order with items")
        .clone()
}

/// Changes one record of a fresh copy, then asserts `kind` fires and nothing outside `allowed`.
fn corrupt(kind: V, allowed: &[V], change: impl FnOnce(&mut Copy, &OrderRecord)) {
    let mut copy = Copy::of(FIXTURE);
    let order = rejected(&copy);
    change(&mut copy, &order);
    assert_flags(&copy, kind, allowed);
}

/// Proves the recorded run is valid as it stands: it holds completed and rejected orders, and
/// no rejected order has a payment, a live reservation or a shipment; some order SKU ran out.
#[test]
fn the_recorded_run_with_rejected_orders_is_valid() {
    let copy = Copy::of(FIXTURE);
    let v = copy.check();
    assert_eq!(v.validity, Validity::Valid, "{v:#?}");
    let count = |s: OrderStatus| v.details.by_status.get(&s).copied().unwrap_or(0);
    assert!(
        count(OrderStatus::Rejected) >= MIN_REJECTED,
        "{:?}",
        v.details.by_status
    );
    assert!(
        count(OrderStatus::Completed) > 0,
        "{:?}",
        v.details.by_status
    );
    let rejected: BTreeSet<&str> = copy
        .state
        .orders
        .iter()
        .filter(|o| o.status == OrderStatus::Rejected)
        .map(|o| o.order_id.as_str())
        .collect();
    let st = &copy.state;
    assert!(!st
        .payments
        .iter()
        .any(|p| rejected.contains(p.order_id.as_str())));
    assert!(!st
        .shipments
        .iter()
        .any(|s| rejected.contains(s.order_id.as_str())));
    assert!(
        !st.reservations
            .iter()
            .any(|r| rejected.contains(r.order_id.as_str())
                && r.status != ReservationStatus::Released)
    );
    assert!(st
        .stock
        .iter()
        .any(|s| s.sku.starts_with("sku-") && s.available < 3));
}

/// Proves a charge that landed for an order the saga then rejected (the refusal came after
/// the charge, and the order was not compensated) is `rejected-but-charged`.
#[test]
fn rejected_order_with_a_charge() {
    corrupt(V::RejectedButCharged, &[V::LostRefund], |c, o| {
        c.state.payments.push(PaymentRecord {
            key: format!("{}:charge", o.order_id),
            kind: PaymentKind::Charge,
            order_id: o.order_id.clone(),
            amount: o.amount,
            charge: None,
            replays: 0,
        });
    });
}

/// Proves a reservation that landed for a rejected order and still holds its units (the
/// refusal of a retried reserve hid the first one's success) is `stock-not-released`. Every
/// SKU of this run ran out, so the units it holds are also an oversell: `negative-stock`.
#[test]
fn rejected_order_holding_stock() {
    corrupt(V::StockNotReleased, &[V::NegativeStock], |c, o| {
        let item = o.items[0].clone();
        c.state.reservations.push(ReservationRecord {
            key: format!("{}:reserve:0", o.order_id),
            order_id: o.order_id.clone(),
            sku: item.sku.clone(),
            qty: item.qty,
            status: ReservationStatus::Reserved,
            replays: Some(0),
        });
        let s = c
            .state
            .stock
            .iter_mut()
            .find(|s| s.sku == item.sku)
            .expect("stock of the item's SKU");
        s.available -= item.qty;
    });
}

/// Proves a live shipment for a rejected order is `shipment-not-cancelled`.
#[test]
fn rejected_order_shipped() {
    corrupt(V::ShipmentNotCancelled, &[], |c, o| {
        c.state.shipments.push(ShipmentRecord {
            key: format!("{}:ship", o.order_id),
            order_id: o.order_id.clone(),
            status: ShipmentStatus::Created,
            replays: 0,
        });
    });
}
