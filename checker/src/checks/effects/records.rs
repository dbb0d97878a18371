//! Per record, against the orders: every payment, shipment, order reservation and order release
//! belongs to an order the order service knows, under the key the pipeline derives for that
//! order and step; stock-workload records carry keys a stock client used and no order's key.

use std::collections::{BTreeMap, BTreeSet};

use formats::effects::{
    effect_key, parse_effect_key, EffectViolation as Violation, Step, StepKind, MAX_AMOUNT_CENTS,
};
use formats::final_state::{
    FinalState, OrderRecord, PaymentKind, PaymentRecord, ReleaseRecord, ReservationRecord,
    ShipmentRecord,
};
use formats::history::{values, OpType, F};
use formats::Role;

use super::Finding;
use crate::rundir::History;

/// The final state's records by order.
pub(super) struct Index<'a> {
    /// Orders by id (a list: the same id twice is a violation of its own).
    pub orders: BTreeMap<&'a str, Vec<&'a OrderRecord>>,
    pub payments: BTreeMap<&'a str, Vec<&'a PaymentRecord>>,
    pub shipments: BTreeMap<&'a str, Vec<&'a ShipmentRecord>>,
    /// Reservations that name an order.
    pub reservations: BTreeMap<&'a str, Vec<&'a ReservationRecord>>,
    /// Releases that name an order.
    pub releases: BTreeMap<&'a str, Vec<&'a ReleaseRecord>>,
}

fn by_order<'a, T>(
    items: &'a [T],
    order: impl Fn(&'a T) -> &'a str,
) -> BTreeMap<&'a str, Vec<&'a T>> {
    let mut m: BTreeMap<&str, Vec<&T>> = BTreeMap::new();
    for x in items {
        let id = order(x);
        if !id.is_empty() {
            m.entry(id).or_default().push(x);
        }
    }
    m
}

impl<'a> Index<'a> {
    pub fn of(state: &'a FinalState) -> Index<'a> {
        Index {
            orders: by_order(&state.orders, |o| o.order_id.as_str()),
            payments: by_order(&state.payments, |p| p.order_id.as_str()),
            shipments: by_order(&state.shipments, |s| s.order_id.as_str()),
            reservations: by_order(&state.reservations, |r| r.order_id.as_str()),
            releases: by_order(&state.releases, |r| r.order_id.as_str()),
        }
    }

    fn knows(&self, order_id: &str) -> bool {
        self.orders.contains_key(order_id)
    }
}

/// `key` is `<order_id>:<step>` with a step of `kind`; the item index if it has one.
fn derived(key: &str, order_id: &str, kind: StepKind) -> Option<Option<usize>> {
    match parse_effect_key(key) {
        Some((o, step)) if o == order_id && step.kind == kind => Some(step.item),
        _ => None,
    }
}

fn wrong_key(order_id: &str, key: &str, what: &str, expected: String) -> Finding {
    Finding::new(
        Violation::WrongEffectKey,
        format!("{what} under key {key:?}; the pipeline derives {expected}"),
    )
    .order(order_id)
    .keys([key])
}

/// Keys a client invoked `f` with.
fn invoked_keys(history: &History, f: F) -> BTreeSet<String> {
    history
        .ops
        .iter()
        .filter(|op| op.f == f && op.op_type == OpType::Invoke)
        .filter_map(|op| op.payload::<values::StockChange>().map(|c| c.key))
        .collect()
}

/// Runs the per-record rules.
pub(super) fn check(
    index: &Index<'_>,
    history: &History,
    state: &FinalState,
    out: &mut Vec<Finding>,
) {
    payments(index, state, out);
    if state.has_service(Role::Shipping) {
        for s in &state.shipments {
            let expected = effect_key(&s.order_id, Step::once(StepKind::Ship));
            if s.key != expected {
                out.push(wrong_key(&s.order_id, &s.key, "a shipment", expected));
            }
        }
        orphans(index, &index.shipments, "shipments", |s| &s.key, out);
    }
    if state.has_service(Role::Inventory) {
        order_stock_keys(state, out);
        orphans(index, &index.reservations, "reservations", |r| &r.key, out);
        orphans(index, &index.releases, "releases", |r| &r.key, out);
        workload_stock(history, state, out);
    }
}

fn payments(index: &Index<'_>, state: &FinalState, out: &mut Vec<Finding>) {
    for p in &state.payments {
        let kind = match p.kind {
            PaymentKind::Charge => StepKind::Charge,
            PaymentKind::Refund => StepKind::Refund,
        };
        let expected = effect_key(&p.order_id, Step::once(kind));
        if p.key != expected {
            out.push(wrong_key(
                &p.order_id,
                &p.key,
                &format!("a {kind}"),
                expected,
            ));
        }
        if !(1..=MAX_AMOUNT_CENTS).contains(&p.amount) {
            out.push(
                Finding::new(
                    Violation::BadAmount,
                    format!("a {kind} of {} cents (1 to {MAX_AMOUNT_CENTS})", p.amount),
                )
                .order(&p.order_id)
                .keys([p.key.as_str()])
                .amount("amount", p.amount),
            );
        }
    }
    orphans(index, &index.payments, "payment records", |p| &p.key, out);
}

/// One `effect-without-order` per unknown order a ledger's records name.
fn orphans<'a, T>(
    index: &Index<'_>,
    records: &BTreeMap<&'a str, Vec<&'a T>>,
    what: &str,
    key: impl Fn(&T) -> &String,
    out: &mut Vec<Finding>,
) {
    for (order_id, recs) in records {
        if !index.knows(order_id) {
            let keys: Vec<&str> = recs.iter().map(|r| key(r).as_str()).collect();
            out.push(
                Finding::new(
                    Violation::EffectWithoutOrder,
                    format!("{what} {keys:?} name an order the order service does not know"),
                )
                .order(order_id)
                .keys(keys),
            );
        }
    }
}

/// Order reservations under `<order>:reserve:<i>`, order releases under `<order>:release:<i>`
/// naming `<order>:reserve:<i>`.
fn order_stock_keys(state: &FinalState, out: &mut Vec<Finding>) {
    for r in state.reservations.iter().filter(|r| !r.order_id.is_empty()) {
        if derived(&r.key, &r.order_id, StepKind::Reserve).is_none() {
            let expected = format!("{}:reserve:<item>", r.order_id);
            out.push(wrong_key(&r.order_id, &r.key, "a reservation", expected).sku(&r.sku));
        }
    }
    for r in state.releases.iter().filter(|r| !r.order_id.is_empty()) {
        let item = derived(&r.key, &r.order_id, StepKind::Release).flatten();
        let names = derived(&r.reservation, &r.order_id, StepKind::Reserve).flatten();
        if item.is_none() || item != names {
            let expected = format!(
                "{o}:release:<item> naming {o}:reserve:<item>",
                o = r.order_id
            );
            let what = format!("a release naming {:?}", r.reservation);
            out.push(
                wrong_key(&r.order_id, &r.key, &what, expected)
                    .sku(&r.sku)
                    .keys([r.reservation.as_str()]),
            );
        }
    }
}

/// Stock-workload reservations and releases: under keys a stock client invoked, not under an
/// order's key, one reservation per key.
fn workload_stock(history: &History, state: &FinalState, out: &mut Vec<Finding>) {
    let reserves = invoked_keys(history, F::Reserve);
    let releases = invoked_keys(history, F::Release);
    let mut per_key: BTreeMap<(&str, &str), Vec<&ReservationRecord>> = BTreeMap::new();
    for r in state.reservations.iter().filter(|r| r.order_id.is_empty()) {
        per_key
            .entry((r.key.as_str(), r.sku.as_str()))
            .or_default()
            .push(r);
        if parse_effect_key(&r.key).is_some() {
            out.push(
                Finding::new(
                    Violation::WrongEffectKey,
                    "a reservation under an order's key names no order",
                )
                .sku(&r.sku)
                .keys([r.key.as_str()]),
            );
        } else if !reserves.contains(&r.key) {
            out.push(
                Finding::new(
                    Violation::UnrequestedEffect,
                    "a stock-workload reservation under a key no client's reserve used",
                )
                .sku(&r.sku)
                .keys([r.key.as_str()])
                .amount("qty", r.qty),
            );
        }
    }
    for ((key, sku), recs) in per_key.into_iter().filter(|(_, v)| v.len() > 1) {
        let held: i128 = recs.iter().map(|r| i128::from(r.qty)).sum();
        out.push(
            Finding::new(
                Violation::DoubleReservation,
                format!("{} reservations under one stock-client key", recs.len()),
            )
            .sku(sku)
            .keys([key])
            .amount("units reserved", held),
        );
    }
    for r in state.releases.iter().filter(|r| r.order_id.is_empty()) {
        if parse_effect_key(&r.key).is_some() {
            out.push(
                Finding::new(
                    Violation::WrongEffectKey,
                    "a release under an order's key names no order",
                )
                .sku(&r.sku)
                .keys([r.key.as_str()]),
            );
        } else if !releases.contains(&r.key) {
            out.push(
                Finding::new(
                    Violation::UnrequestedEffect,
                    "a stock-workload release under a key no client's release used",
                )
                .sku(&r.sku)
                .keys([r.key.as_str(), r.reservation.as_str()])
                .amount("qty", r.qty),
            );
        }
    }
}
