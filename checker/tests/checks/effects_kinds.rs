//! Every effect violation kind, old and new, over hand-made run directories: each is flagged in
//! a run that breaks exactly its rule and absent from the nearest legal run. The base run is a
//! full ledger: a completed order of two items, an order rejected at its second item's reserve,
//! a compensated order, and stock clients' reservations (one held, one released), with stock
//! records that account for every unit.

use formats::effects::{EffectViolation as V, MAX_AMOUNT_CENTS};
use formats::final_state::{
    Item, OrderRecord, OrderStatus, PaymentKind, PaymentRecord, ReleaseRecord, ReservationRecord,
    ReservationStatus as RS, ShipmentRecord, ShipmentStatus,
};
use formats::history::{OpType, F};
use serde_json::json;

use crate::support::Run;
use checker::Validity;

fn pay(
    key: &str,
    kind: PaymentKind,
    order: &str,
    amount: i64,
    charge: Option<&str>,
) -> PaymentRecord {
    PaymentRecord {
        key: key.into(),
        kind,
        order_id: order.into(),
        amount,
        charge: charge.map(str::to_owned),
        replays: 0,
    }
}

fn resv(key: &str, order: &str, sku: &str, qty: i64, status: RS) -> ReservationRecord {
    ReservationRecord {
        key: key.into(),
        order_id: order.into(),
        sku: sku.into(),
        qty,
        status,
        replays: None,
    }
}

fn release(key: &str, order: &str, sku: &str, qty: i64, reservation: &str) -> ReleaseRecord {
    ReleaseRecord {
        key: key.into(),
        order_id: order.into(),
        sku: sku.into(),
        qty,
        reservation: reservation.into(),
        replays: 0,
    }
}

fn ship(order: &str, status: ShipmentStatus) -> ShipmentRecord {
    ShipmentRecord {
        key: format!("{order}:ship"),
        order_id: order.into(),
        status,
        replays: 0,
    }
}

/// Places `id` (invoke and ok in the history) and adds its order record.
fn place(
    run: &mut Run,
    id: &str,
    at_s: f64,
    status: OrderStatus,
    items: &[(&str, i64)],
    amount: i64,
) {
    let key = format!("key-{id}");
    let items: Vec<Item> = items
        .iter()
        .map(|(s, q)| Item {
            sku: (*s).into(),
            qty: *q,
        })
        .collect();
    run.op(
        0,
        F::PlaceOrder,
        at_s,
        0.05,
        OpType::Ok,
        json!({"key": key, "customer": "c1", "items": items, "amount": amount}),
        json!({"key": key, "order_id": id}),
    );
    run.state.orders.push(OrderRecord {
        order_id: id.into(),
        idempotency_key: key,
        status,
        amount,
        items,
        reason: None,
    });
}

/// A stock client's reserve (and optional release) in the history.
fn stock_ops(
    run: &mut Run,
    process: u64,
    at_s: f64,
    key: &str,
    sku: &str,
    qty: i64,
    released_by: Option<&str>,
) {
    let v = json!({"key": key, "sku": sku, "qty": qty});
    run.op(process, F::Reserve, at_s, 0.02, OpType::Ok, v.clone(), v);
    if let Some(rk) = released_by {
        let v = json!({"key": rk, "sku": sku, "qty": qty, "reservation": key});
        run.op(
            process,
            F::Release,
            at_s + 0.1,
            0.02,
            OpType::Ok,
            v.clone(),
            v,
        );
    }
}

/// The legal base run (see the module's description).
pub fn ledger_run() -> Run {
    let mut run = Run::new();
    place(
        &mut run,
        "o1",
        1.0,
        OrderStatus::Completed,
        &[("sku-1", 1), ("sku-2", 2)],
        500,
    );
    place(
        &mut run,
        "o2",
        1.2,
        OrderStatus::Rejected,
        &[("sku-1", 1), ("sku-3", 5)],
        700,
    );
    place(
        &mut run,
        "o3",
        1.4,
        OrderStatus::Compensated,
        &[("sku-2", 1)],
        900,
    );
    let s = &mut run.state;
    s.payments = vec![
        pay("o1:charge", PaymentKind::Charge, "o1", 500, None),
        pay("o3:charge", PaymentKind::Charge, "o3", 900, None),
        pay(
            "o3:refund",
            PaymentKind::Refund,
            "o3",
            900,
            Some("o3:charge"),
        ),
    ];
    s.shipments = vec![
        ship("o1", ShipmentStatus::Created),
        ship("o3", ShipmentStatus::Cancelled),
    ];
    s.reservations = vec![
        resv("o1:reserve:0", "o1", "sku-1", 1, RS::Committed),
        resv("o1:reserve:1", "o1", "sku-2", 2, RS::Committed),
        resv("o2:reserve:0", "o2", "sku-1", 1, RS::Released),
        resv("o3:reserve:0", "o3", "sku-2", 1, RS::Released),
        resv("st-p5-0", "", "sku-1", 2, RS::Reserved),
        resv("st-p5-1", "", "sku-2", 1, RS::Released),
    ];
    s.releases = vec![
        release("o2:release:0", "o2", "sku-1", 1, "o2:reserve:0"),
        release("o3:release:0", "o3", "sku-2", 1, "o3:reserve:0"),
        release("st-p5-2", "", "sku-2", 1, "st-p5-1"),
    ];
    stock_ops(&mut run, 5, 2.0, "st-p5-0", "sku-1", 2, None);
    stock_ops(&mut run, 5, 2.5, "st-p5-1", "sku-2", 1, Some("st-p5-2"));
    let read = json!({"order_id": "o1"});
    run.op(
        1,
        F::ReadOrder,
        3.0,
        0.01,
        OpType::Ok,
        read,
        json!({"order_id": "o1", "status": "completed"}),
    );
    reaccount(&mut run);
    run
}

/// The effects check of `run`, written to a run directory and read back.
pub fn effects_of(run: &Run) -> checker::Verdict<checker::checks::effects::Details> {
    let dir = tempfile::tempdir().expect("tempdir");
    run.write(dir.path());
    let data = checker::RunData::load(dir.path()).expect("loads");
    checker::checks::effects::check(&data.history, &data.final_state)
}

type Mutate = fn(&mut Run);

fn order<'a>(run: &'a mut Run, id: &str) -> &'a mut OrderRecord {
    run.state
        .orders
        .iter_mut()
        .find(|o| o.order_id == id)
        .expect("order")
}

fn reservation<'a>(run: &'a mut Run, key: &str) -> &'a mut ReservationRecord {
    run.state
        .reservations
        .iter_mut()
        .find(|r| r.key == key)
        .expect("reservation")
}

fn payment<'a>(run: &'a mut Run, key: &str) -> &'a mut PaymentRecord {
    run.state
        .payments
        .iter_mut()
        .find(|p| p.key == key)
        .expect("payment")
}

/// Keeps stock conserved after a mutation of reservations that is not about stock (sku-3,
/// which only the rejected order's unreserved item names, keeps its untouched record).
fn reaccount(run: &mut Run) {
    run.account_stock(100);
    if !run.state.stock.iter().any(|s| s.sku == "sku-3") {
        run.state.stock.push(formats::final_state::StockRecord {
            sku: "sku-3".into(),
            available: 100,
            initial: 100,
        });
    }
}

/// Each kind with a run that breaks its rule and the nearest run that keeps it.
fn cases() -> Vec<(V, Mutate, Mutate)> {
    vec![
        (
            V::DoubleCharge,
            |r| {
                r.state
                    .payments
                    .push(pay("o1:charge", PaymentKind::Charge, "o1", 500, None))
            },
            |r| payment(r, "o1:charge").replays = 3,
        ),
        (
            V::DoubleRefund,
            |r| {
                r.state.payments.push(pay(
                    "o3:refund",
                    PaymentKind::Refund,
                    "o3",
                    900,
                    Some("o3:charge"),
                ))
            },
            |r| payment(r, "o3:refund").replays = 2,
        ),
        (
            V::RefundWithoutCharge,
            |r| {
                r.state.payments.push(pay(
                    "o2:refund",
                    PaymentKind::Refund,
                    "o2",
                    700,
                    Some("o2:charge"),
                ))
            },
            |_| {},
        ),
        (
            V::LostRefund,
            |r| r.state.payments.retain(|p| p.key != "o3:refund"),
            |_| {},
        ),
        (
            V::LostCharge,
            |r| r.state.payments.retain(|p| p.key != "o1:charge"),
            |_| {},
        ),
        (
            V::RefundAmountMismatch,
            |r| payment(r, "o3:refund").amount = 1,
            |_| {},
        ),
        (
            V::RefundOnCompleted,
            |r| {
                r.state.payments.push(pay(
                    "o1:refund",
                    PaymentKind::Refund,
                    "o1",
                    500,
                    Some("o1:charge"),
                ))
            },
            |_| {},
        ),
        (
            V::StuckSaga,
            |r| order(r, "o1").status = OrderStatus::Committing,
            |_| {},
        ),
        (
            V::AcknowledgedOrderMissing,
            |r| {
                r.state.orders.retain(|o| o.order_id != "o2");
                r.state.reservations.retain(|x| x.order_id != "o2");
                r.state.releases.retain(|x| x.order_id != "o2");
                reaccount(r);
            },
            |_| {},
        ),
        (
            V::EffectWithoutOrder,
            |r| {
                r.state
                    .shipments
                    .push(ship("o9", ShipmentStatus::Cancelled))
            },
            |_| {},
        ),
        (
            V::MissingShipment,
            |r| r.state.shipments.retain(|s| s.order_id != "o1"),
            |r| r.state.shipments[0].replays = 1,
        ),
        (
            V::ShipmentNotCancelled,
            |r| r.state.shipments[1].status = ShipmentStatus::Created,
            |_| {},
        ),
        (
            V::StockNotReleased,
            |r| {
                reservation(r, "o2:reserve:0").status = RS::Reserved;
                r.state.releases.retain(|x| x.order_id != "o2");
                reaccount(r);
            },
            |_| {},
        ),
        (
            V::StockReleasedOnCompleted,
            |r| {
                reservation(r, "o1:reserve:0").status = RS::Released;
                r.state
                    .releases
                    .push(release("o1:release:0", "o1", "sku-1", 1, "o1:reserve:0"));
                reaccount(r);
            },
            |_| {},
        ),
        (
            V::StockNotCommitted,
            |r| reservation(r, "o1:reserve:1").status = RS::Reserved,
            |r| reservation(r, "o1:reserve:1").replays = Some(2),
        ),
        (
            V::ChargeAmountMismatch,
            |r| payment(r, "o1:charge").amount = 499,
            |_| {},
        ),
        (
            V::RefundNotLinked,
            |r| payment(r, "o3:refund").charge = None,
            |_| {},
        ),
        (
            V::RejectedButCharged,
            |r| {
                r.state
                    .payments
                    .push(pay("o2:charge", PaymentKind::Charge, "o2", 700, None));
                r.state.payments.push(pay(
                    "o2:refund",
                    PaymentKind::Refund,
                    "o2",
                    700,
                    Some("o2:charge"),
                ));
            },
            |r| order(r, "o2").status = OrderStatus::Rejected,
        ),
        (
            V::MissingReservation,
            |r| {
                r.state.reservations.retain(|x| x.key != "o1:reserve:1");
                reaccount(r);
            },
            |_| {},
        ),
        (
            V::DoubleReservation,
            |r| {
                r.state
                    .reservations
                    .push(resv("o1:reserve:1", "o1", "sku-2", 2, RS::Committed));
                reaccount(r);
            },
            |_| {},
        ),
        (
            V::ReservationMismatch,
            |r| {
                reservation(r, "o1:reserve:1").qty = 3;
                reaccount(r);
            },
            |_| {},
        ),
        (
            V::WrongEffectKey,
            |r| payment(r, "o1:charge").key = "o3:charge".into(),
            |_| {},
        ),
        (
            V::OrderNotPlaced,
            |r| {
                r.state.orders.push(OrderRecord {
                    order_id: "o4".into(),
                    idempotency_key: "key-o4".into(),
                    status: OrderStatus::Rejected,
                    amount: 5,
                    items: vec![],
                    reason: None,
                })
            },
            |r| {
                let v = json!({"key": "key-o4", "customer": "c", "items": [], "amount": 5});
                r.op(3, F::PlaceOrder, 4.0, 1.0, OpType::Info, v.clone(), v);
                r.state.orders.push(OrderRecord {
                    order_id: "o4".into(),
                    idempotency_key: "key-o4".into(),
                    status: OrderStatus::Rejected,
                    amount: 5,
                    items: vec![],
                    reason: None,
                });
            },
        ),
        (
            V::OrderPayloadMismatch,
            |r| {
                order(r, "o1").amount = 600;
                payment(r, "o1:charge").amount = 600;
            },
            |_| {},
        ),
        (
            V::DoubleOrder,
            |r| {
                let mut twin = order(r, "o2").clone();
                twin.order_id = "o2b".into();
                r.state.orders.push(twin);
            },
            |_| {},
        ),
        (
            V::DoubleShipment,
            |r| {
                r.state
                    .shipments
                    .push(ship("o3", ShipmentStatus::Cancelled))
            },
            |_| {},
        ),
        (
            V::UnrequestedEffect,
            |r| {
                r.state
                    .reservations
                    .push(resv("st-p9-0", "", "sku-3", 4, RS::Released))
            },
            |r| {
                stock_ops(r, 9, 5.0, "st-p9-0", "sku-3", 4, None);
                r.state
                    .reservations
                    .push(resv("st-p9-0", "", "sku-3", 4, RS::Reserved));
                reaccount(r);
            },
        ),
        (
            V::NegativeStock,
            |r| {
                r.state
                    .stock
                    .iter_mut()
                    .for_each(|s| s.available -= s.initial + 1);
            },
            |_| {},
        ),
        (
            V::StockNotConserved,
            |r| r.state.stock[1].available -= 1,
            |_| {},
        ),
        (
            V::OverRelease,
            |r| {
                r.state
                    .releases
                    .push(release("st-p5-3", "", "sku-2", 1, "st-p5-1"))
            },
            |_| {},
        ),
        (
            V::BadAmount,
            |r| {
                order(r, "o2").amount = MAX_AMOUNT_CENTS + 1;
                if let Some(op) = r
                    .ops
                    .iter_mut()
                    .find(|o| o.f == F::PlaceOrder && o.value["key"] == "key-o2")
                {
                    op.value["amount"] = json!(MAX_AMOUNT_CENTS + 1);
                }
            },
            |r| {
                order(r, "o2").amount = MAX_AMOUNT_CENTS;
                if let Some(op) = r
                    .ops
                    .iter_mut()
                    .find(|o| o.f == F::PlaceOrder && o.value["key"] == "key-o2")
                {
                    op.value["amount"] = json!(MAX_AMOUNT_CENTS);
                }
            },
        ),
        (
            V::TerminalStatusChanged,
            |r| {
                let read = json!({"order_id": "o2"});
                r.op(
                    2,
                    F::ReadOrder,
                    3.0,
                    0.01,
                    OpType::Ok,
                    read,
                    json!({"order_id": "o2", "status": "completed"}),
                );
            },
            |r| {
                let read = json!({"order_id": "o2"});
                r.op(
                    2,
                    F::ReadOrder,
                    3.0,
                    0.01,
                    OpType::Ok,
                    read,
                    json!({"order_id": "o2", "status": "rejected"}),
                );
            },
        ),
    ]
}

/// Proves the base run is a legal ledger in which every record is accounted for: the effects
/// check is valid and reports each SKU's units.
#[test]
fn the_base_ledger_is_legal() {
    let v = effects_of(&ledger_run());
    assert_eq!(v.validity, Validity::Valid, "{v:#?}");
    let sku1 = v
        .details
        .stock
        .iter()
        .find(|s| s.sku == "sku-1")
        .expect("sku-1");
    assert_eq!(
        (sku1.initial, sku1.available, sku1.committed, sku1.reserved),
        (100, 97, 1, 2)
    );
    assert_eq!(v.details.release_records, 3);
}

/// Proves every violation kind, old and new, is flagged by name (with the order or SKU named in
/// its evidence) in a run that breaks its rule, and that the nearest run keeping the rule
/// passes; and that every kind the checker knows has such a pair.
#[test]
fn every_kind_is_flagged_and_its_legal_neighbour_passes() {
    let cases = cases();
    for kind in V::ALL {
        assert!(
            cases.iter().any(|(k, _, _)| *k == kind),
            "{kind} has no case"
        );
    }
    for (kind, flag, pass) in cases {
        let mut bad = ledger_run();
        flag(&mut bad);
        let v = effects_of(&bad);
        assert_eq!(v.validity, Validity::Invalid, "{kind}: {v:#?}");
        let found: Vec<_> = v
            .details
            .violations
            .iter()
            .filter(|f| f.kind == kind)
            .collect();
        assert!(
            !found.is_empty(),
            "{kind} not named in {:?}",
            v.details.violation_counts
        );
        assert!(
            found
                .iter()
                .all(|f| f.order_id.is_some() || f.sku.is_some()),
            "{kind}: evidence names an order or a SKU: {found:?}"
        );
        let mut good = ledger_run();
        pass(&mut good);
        let v = effects_of(&good);
        assert_eq!(v.validity, Validity::Valid, "{kind} neighbour: {v:#?}");
    }
}

/// Proves the evidence of a money and a stock violation carries the typed amounts and keys a
/// person needs, and the report table shows them.
#[test]
fn evidence_carries_keys_and_amounts() {
    let mut run = ledger_run();
    payment(&mut run, "o1:charge").amount = 499;
    run.state.stock[1].available -= 1;
    let v = effects_of(&run);
    let charge = v
        .details
        .violations
        .iter()
        .find(|f| f.kind == V::ChargeAmountMismatch)
        .expect("charge");
    assert_eq!(charge.order_id.as_deref(), Some("o1"));
    assert_eq!(charge.keys, ["o1:charge"]);
    assert_eq!(
        (charge.amounts["order amount"], charge.amounts["charged"]),
        (500, 499)
    );
    let stock = v
        .details
        .violations
        .iter()
        .find(|f| f.kind == V::StockNotConserved)
        .expect("stock");
    assert_eq!(stock.sku.as_deref(), Some("sku-2"));
    assert_eq!(stock.amounts["difference"], 1);
    let tables = <checker::checks::Effects as checker::check::Check>::tables(&v.details);
    let rows = &tables[0].rows;
    assert!(
        rows.iter().any(|r| r[0] == "charge-amount-mismatch"
            && r[3] == "o1:charge"
            && r[4].contains("charged 499")),
        "{rows:?}"
    );
}
