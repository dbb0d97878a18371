//! The hand-made ledger the effects-kinds tests run on (see `effects_kinds.rs`): a full base
//! run, and for every violation kind a change that breaks its rule and the nearest change that
//! keeps it.

use formats::effects::{EffectViolation as V, MAX_AMOUNT_CENTS};
use formats::final_state::{
    Item, OrderRecord, OrderStatus, PaymentKind, PaymentRecord, ReleaseRecord, ReservationRecord,
    ReservationStatus as RS, ShipmentRecord, ShipmentStatus,
};
use formats::history::{OpType, F};
use serde_json::json;

use crate::support::Run;

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
    read_as(&mut run, 1, "o1", "completed");
    reaccount(&mut run);
    run
}

/// Client `process` reads `order` at 3 s, ok, answering `status`.
fn read_as(run: &mut Run, process: u64, order: &str, status: &str) {
    run.op(
        process,
        F::ReadOrder,
        3.0,
        0.01,
        OpType::Ok,
        json!({"order_id": order}),
        json!({"order_id": order, "status": status}),
    );
}

/// Order o2 placed and stored for `amount` cents.
fn o2_amount(run: &mut Run, amount: i64) {
    order(run, "o2").amount = amount;
    let placed = run
        .ops
        .iter_mut()
        .find(|o| o.f == F::PlaceOrder && o.value["key"] == "key-o2")
        .expect("o2 placed");
    placed.value["amount"] = json!(amount);
}

/// A rejected order o4 with no items, as the order service stores it.
fn rejected_o4() -> OrderRecord {
    OrderRecord {
        order_id: "o4".into(),
        idempotency_key: "key-o4".into(),
        status: OrderStatus::Rejected,
        amount: 5,
        items: vec![],
        reason: None,
    }
}

/// The effects check of `run`, written to a run directory and read back.
pub fn effects_of(run: &Run) -> checker::Verdict<checker::checks::effects::Details> {
    let dir = tempfile::tempdir().expect("tempdir");
    run.write(dir.path());
    let data = checker::RunData::load(dir.path()).expect("loads");
    checker::checks::effects::check(&data.history, &data.final_state)
}

pub type Mutate = fn(&mut Run);

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

pub fn payment<'a>(run: &'a mut Run, key: &str) -> &'a mut PaymentRecord {
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
pub fn cases() -> Vec<(V, Mutate, Mutate)> {
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
            |r| r.state.orders.push(rejected_o4()),
            |r| {
                let v = json!({"key": "key-o4", "customer": "c", "items": [], "amount": 5});
                r.op(3, F::PlaceOrder, 4.0, 1.0, OpType::Info, v.clone(), v);
                r.state.orders.push(rejected_o4());
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
            |r| o2_amount(r, MAX_AMOUNT_CENTS + 1),
            |r| o2_amount(r, MAX_AMOUNT_CENTS),
        ),
        (
            V::TerminalStatusChanged,
            |r| read_as(r, 2, "o2", "completed"),
            |r| read_as(r, 2, "o2", "rejected"),
        ),
    ]
}
