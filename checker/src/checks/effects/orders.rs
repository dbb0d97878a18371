//! Per order, against the order itself: the end state and exactly the effects it implies, of
//! the order's amount, items and quantities.

use std::collections::BTreeMap;

use formats::effects::{
    parse_effect_key, EffectViolation as Violation, StepKind, MAX_AMOUNT_CENTS, MAX_QTY_UNITS,
};
use formats::final_state::{
    FinalState, OrderRecord, OrderStatus, PaymentKind, PaymentRecord, ReservationRecord,
    ReservationStatus, ShipmentRecord, ShipmentStatus,
};
use formats::Role;

use super::records::Index;
use super::Finding;

/// The effect records of one order.
struct OrderEffects<'a> {
    charges: Vec<&'a PaymentRecord>,
    refunds: Vec<&'a PaymentRecord>,
    shipments: &'a [&'a ShipmentRecord],
    reservations: &'a [&'a ReservationRecord],
}

impl OrderEffects<'_> {
    fn describe(&self, order: &OrderRecord, state: &FinalState) -> String {
        let money = |recs: &[&PaymentRecord]| {
            recs.iter()
                .map(|r| format!("{} ({} cents)", r.key, r.amount))
                .collect::<Vec<_>>()
        };
        let mut text = format!(
            "status {}, amount {}, charges {:?}, refunds {:?}",
            order.status,
            order.amount,
            money(&self.charges),
            money(&self.refunds)
        );
        if state.has_service(Role::Shipping) {
            let s: Vec<String> = self
                .shipments
                .iter()
                .map(|s| format!("{} {}", s.key, s.status))
                .collect();
            text.push_str(&format!(", shipments {s:?}"));
        }
        if state.has_service(Role::Inventory) {
            let r: Vec<String> = self
                .reservations
                .iter()
                .map(|r| format!("{} {}x{} {}", r.key, r.qty, r.sku, r.status))
                .collect();
            text.push_str(&format!(", reservations {r:?}"));
        }
        if let Some(reason) = &order.reason {
            text.push_str(&format!(", reason {reason:?}"));
        }
        text
    }

    fn payment_keys(&self) -> impl Iterator<Item = &str> {
        self.charges
            .iter()
            .chain(&self.refunds)
            .map(|p| p.key.as_str())
    }
}

/// Runs the per-order rules over every order the service knows.
pub(super) fn check(index: &Index<'_>, state: &FinalState, out: &mut Vec<Finding>) {
    for order in &state.orders {
        let id = order.order_id.as_str();
        let pays = index.payments.get(id).map(Vec::as_slice).unwrap_or(&[]);
        let effects = OrderEffects {
            charges: pays
                .iter()
                .copied()
                .filter(|p| p.kind == PaymentKind::Charge)
                .collect(),
            refunds: pays
                .iter()
                .copied()
                .filter(|p| p.kind == PaymentKind::Refund)
                .collect(),
            shipments: index.shipments.get(id).map(Vec::as_slice).unwrap_or(&[]),
            reservations: index.reservations.get(id).map(Vec::as_slice).unwrap_or(&[]),
        };
        check_order(order, &effects, state, out);
    }
}

fn check_order(
    order: &OrderRecord,
    effects: &OrderEffects<'_>,
    state: &FinalState,
    out: &mut Vec<Finding>,
) {
    let base = || {
        Finding::new(Violation::StuckSaga, effects.describe(order, state)).order(&order.order_id)
    };
    let push = |out: &mut Vec<Finding>, kind: Violation, f: Finding| {
        out.push(Finding { kind, ..f });
    };
    bounds(order, base, out);
    // Without the payment ledger (its read failed) no rule on money can be judged: an empty
    // ledger would make every charge look lost.
    if state.has_service(Role::Payment) {
        money(order, effects, base, out);
    }
    let shipping = state.has_service(Role::Shipping);
    let live: Vec<&str> = effects
        .shipments
        .iter()
        .filter(|s| s.status == ShipmentStatus::Created)
        .map(|s| s.key.as_str())
        .collect();
    if shipping && effects.shipments.len() > 1 {
        let keys = effects.shipments.iter().map(|s| s.key.as_str());
        push(out, Violation::DoubleShipment, base().keys(keys));
    }
    match order.status {
        OrderStatus::Completed => {
            if shipping && live.is_empty() {
                push(out, Violation::MissingShipment, base());
            }
        }
        OrderStatus::Rejected | OrderStatus::Compensated => {
            if shipping && !live.is_empty() {
                push(out, Violation::ShipmentNotCancelled, base().keys(live));
            }
        }
        _ => push(out, Violation::StuckSaga, base()),
    }
    if state.has_service(Role::Inventory) && order.status.is_terminal() {
        items(order, effects, base, out);
    }
}

/// Amounts and quantities within the documented bounds.
fn bounds(order: &OrderRecord, base: impl Fn() -> Finding, out: &mut Vec<Finding>) {
    if !(1..=MAX_AMOUNT_CENTS).contains(&order.amount) {
        let f = base().amount("order amount", order.amount);
        out.push(Finding {
            kind: Violation::BadAmount,
            ..f
        });
    }
    for (i, item) in order.items.iter().enumerate() {
        if !(1..=MAX_QTY_UNITS).contains(&item.qty) {
            let f = base()
                .sku(&item.sku)
                .amount(&format!("item {i} qty"), item.qty);
            out.push(Finding {
                kind: Violation::BadAmount,
                ..f
            });
        }
    }
}

/// Charges of the order's amount, refunds that name a charge of the order and equal it, and
/// the money each terminal status implies: completed is charged and not refunded, compensated
/// is charged and refunded, rejected has neither.
fn money(
    order: &OrderRecord,
    effects: &OrderEffects<'_>,
    base: impl Fn() -> Finding,
    out: &mut Vec<Finding>,
) {
    let (charges, refunds) = (&effects.charges, &effects.refunds);
    let mut push = |kind, f: Finding| out.push(Finding { kind, ..f });
    let amount = || base().amount("order amount", order.amount);
    match order.status {
        OrderStatus::Completed | OrderStatus::Compensated if charges.is_empty() => {
            push(Violation::LostCharge, amount());
        }
        _ => {}
    }
    if order.status == OrderStatus::Completed && !refunds.is_empty() {
        let keys = refunds.iter().map(|r| r.key.as_str());
        push(Violation::RefundOnCompleted, base().keys(keys));
    }
    if order.status == OrderStatus::Rejected && (!charges.is_empty() || !refunds.is_empty()) {
        push(
            Violation::RejectedButCharged,
            base().keys(effects.payment_keys()),
        );
    }
    let undone = matches!(
        order.status,
        OrderStatus::Rejected | OrderStatus::Compensated
    );
    if undone && charges.len() > refunds.len() {
        let f = base()
            .keys(charges.iter().map(|c| c.key.as_str()))
            .amount("charges", charges.len() as i128)
            .amount("refunds", refunds.len() as i128);
        push(Violation::LostRefund, f);
    }
    if charges.len() > 1 {
        push(
            Violation::DoubleCharge,
            base().keys(charges.iter().map(|c| c.key.as_str())),
        );
    }
    if refunds.len() > 1 {
        push(
            Violation::DoubleRefund,
            base().keys(refunds.iter().map(|c| c.key.as_str())),
        );
    }
    if !refunds.is_empty() && charges.is_empty() {
        push(
            Violation::RefundWithoutCharge,
            base().keys(refunds.iter().map(|c| c.key.as_str())),
        );
    }
    for c in charges.iter().filter(|c| c.amount != order.amount) {
        let f = base()
            .keys([c.key.as_str()])
            .amount("order amount", order.amount)
            .amount("charged", c.amount);
        push(Violation::ChargeAmountMismatch, f);
    }
    for r in refunds {
        let named = r
            .charge
            .as_deref()
            .and_then(|k| charges.iter().find(|c| c.key == k));
        if named.is_none() && !charges.is_empty() {
            let f = base().keys([r.key.as_str()]).keys(r.charge.as_deref());
            push(Violation::RefundNotLinked, f);
        }
        if let Some(c) = named.or(charges.first()) {
            if c.amount != r.amount {
                let f = base()
                    .keys([c.key.as_str(), r.key.as_str()])
                    .amount("charged", c.amount)
                    .amount("refunded", r.amount);
                push(Violation::RefundAmountMismatch, f);
            }
        }
    }
}

/// Every item of a terminal order: at most one reservation (exactly one past the reserve step)
/// of the item's SKU and quantity, committed when completed, released when it failed.
fn items(
    order: &OrderRecord,
    effects: &OrderEffects<'_>,
    base: impl Fn() -> Finding,
    out: &mut Vec<Finding>,
) {
    let mut per_item: BTreeMap<usize, Vec<&ReservationRecord>> = BTreeMap::new();
    for r in effects.reservations {
        let parsed = parse_effect_key(&r.key)
            .filter(|(o, s)| *o == order.order_id && s.kind == StepKind::Reserve);
        if let Some((_, step)) = parsed {
            per_item.entry(step.item.unwrap_or(0)).or_default().push(r);
        }
    }
    let mut push = |kind, f: Finding| out.push(Finding { kind, ..f });
    for i in per_item.keys().filter(|i| **i >= order.items.len()) {
        let keys = per_item[i].iter().map(|r| r.key.as_str());
        let f = base().keys(keys).amount("items", order.items.len() as i128);
        push(Violation::ReservationMismatch, f);
    }
    // Rejected orders may have stopped at any item (a refusal to reserve): the others got past
    // the reserve step, so each of their items holds exactly one reservation.
    let all_reserved = order.status != OrderStatus::Rejected;
    for (i, item) in order.items.iter().enumerate() {
        let recs = per_item.get(&i).map(Vec::as_slice).unwrap_or(&[]);
        let keys = || recs.iter().map(|r| r.key.as_str());
        if recs.is_empty() && all_reserved {
            let f = base()
                .sku(&item.sku)
                .amount(&format!("item {i} qty"), item.qty);
            push(Violation::MissingReservation, f);
        }
        if recs.len() > 1 {
            push(
                Violation::DoubleReservation,
                base().sku(&item.sku).keys(keys()),
            );
        }
        for r in recs
            .iter()
            .filter(|r| r.sku != item.sku || r.qty != item.qty)
        {
            let f = base()
                .sku(&item.sku)
                .keys([r.key.as_str()])
                .amount("item qty", item.qty)
                .amount("reserved qty", r.qty);
            push(Violation::ReservationMismatch, f);
        }
        for r in recs {
            let kind = match (order.status, r.status) {
                (OrderStatus::Completed, ReservationStatus::Released) => {
                    Violation::StockReleasedOnCompleted
                }
                (OrderStatus::Completed, ReservationStatus::Reserved) => {
                    Violation::StockNotCommitted
                }
                (OrderStatus::Rejected | OrderStatus::Compensated, s) if s.holds() => {
                    Violation::StockNotReleased
                }
                _ => continue,
            };
            push(
                kind,
                base()
                    .sku(&r.sku)
                    .keys([r.key.as_str()])
                    .amount("qty", r.qty),
            );
        }
    }
}
