//! The effects check: every order ends in a legal state, with exactly the effects that state
//! implies. No double effect, no lost effect, no stuck saga.
//!
//! Legal end states:
//! - `completed`: 1 charge, 0 refunds, 1 live shipment (if shipping runs), stock still held
//!   (`reserved` or `committed`);
//! - `rejected`: 0 charges, 0 refunds, no live shipment, no reservation left reserved;
//! - `compensated`: 1 charge, 1 refund of the same amount, no live shipment, stock released.

use std::collections::{BTreeMap, HashMap};

use formats::effects::EffectViolation as Violation;
use formats::final_state::{
    FinalState, OrderRecord, OrderStatus, PaymentKind, PaymentRecord, ReservationRecord,
    ReservationStatus, ShipmentRecord, ShipmentStatus,
};
use formats::history::{values, OpType, F};
use formats::Role;
use serde::{Deserialize, Serialize};

use super::Params;
use crate::check::{Check, Verdict};
use crate::report::table::Table;
use crate::rundir::{History, RunData};
use crate::verdict::{CheckId, Validity};

/// How many violations are listed in full; the counts always cover all of them.
pub const MAX_LISTED_VIOLATIONS: usize = 1000;

/// One violation with its evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// What went wrong.
    pub kind: Violation,
    /// The order.
    pub order_id: String,
    /// What a person needs to see it: status, records, keys.
    pub evidence: String,
}

/// What the check counted and found.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Details {
    /// Orders the order service knows.
    pub orders: usize,
    /// Payment ledger records.
    pub payment_records: usize,
    /// Orders per final status.
    pub by_status: BTreeMap<OrderStatus, usize>,
    /// Violations per kind (all of them).
    pub violation_counts: BTreeMap<Violation, usize>,
    /// Violations, at most [`MAX_LISTED_VIOLATIONS`].
    pub violations: Vec<Finding>,
    /// Violations beyond those listed.
    pub violations_not_listed: usize,
    /// Final-state reads that failed.
    pub read_errors: Vec<String>,
}

/// The check.
pub struct Effects;

impl Check for Effects {
    const ID: CheckId = CheckId::Effects;
    type Details = Details;

    fn run(run: &RunData, _: &Params) -> Verdict<Details> {
        check(&run.history, &run.final_state)
    }

    fn tables(d: &Details) -> Vec<Table> {
        vec![
            Table::of(
                "Violations",
                &["kind", "order", "evidence"],
                &d.violations,
                d.violations_not_listed,
                |f| vec![f.kind.to_string(), f.order_id.clone(), f.evidence.clone()],
            ),
            Table::pairs(
                "Violations by kind",
                "kind",
                "orders",
                d.violation_counts.iter(),
            ),
            Table::pairs(
                "Orders by final status",
                "status",
                "orders",
                d.by_status.iter(),
            ),
            Table::list("Final-state read errors", &d.read_errors, 0),
        ]
    }
}

/// Runs the effects check.
pub fn check(history: &History, state: &FinalState) -> Verdict<Details> {
    let mut findings = Vec::new();
    let orders: HashMap<&str, &OrderRecord> = state
        .orders
        .iter()
        .map(|o| (o.order_id.as_str(), o))
        .collect();

    let mut payments: HashMap<&str, Vec<&PaymentRecord>> = HashMap::new();
    for p in &state.payments {
        payments.entry(p.order_id.as_str()).or_default().push(p);
    }
    let mut shipments: HashMap<&str, Vec<&ShipmentRecord>> = HashMap::new();
    for s in &state.shipments {
        shipments.entry(s.order_id.as_str()).or_default().push(s);
    }
    let mut reservations: HashMap<&str, Vec<&ReservationRecord>> = HashMap::new();
    for r in &state.reservations {
        reservations.entry(r.order_id.as_str()).or_default().push(r);
    }

    for order in &state.orders {
        let id = order.order_id.as_str();
        let recs = payments.get(id).map(Vec::as_slice).unwrap_or(&[]);
        let effects = OrderEffects {
            charges: recs
                .iter()
                .copied()
                .filter(|r| r.kind == PaymentKind::Charge)
                .collect(),
            refunds: recs
                .iter()
                .copied()
                .filter(|r| r.kind == PaymentKind::Refund)
                .collect(),
            shipments: shipments.get(id).map(Vec::as_slice).unwrap_or(&[]),
            reservations: reservations.get(id).map(Vec::as_slice).unwrap_or(&[]),
        };
        check_order(order, &effects, state, &mut findings);
    }

    for (order_id, recs) in &payments {
        if !orders.contains_key(order_id) {
            let keys: Vec<&str> = recs.iter().map(|r| r.key.as_str()).collect();
            findings.push(Finding {
                kind: Violation::EffectWithoutOrder,
                order_id: (*order_id).to_owned(),
                evidence: format!(
                    "payment records {keys:?} name an order the service does not know"
                ),
            });
        }
    }

    for op in &history.ops {
        if op.f != F::PlaceOrder || op.op_type != OpType::Ok {
            continue;
        }
        let Some(order_id) = op.payload::<values::Placed>().and_then(|p| p.order_id) else {
            continue;
        };
        if !orders.contains_key(order_id.as_str()) {
            findings.push(Finding {
                kind: Violation::AcknowledgedOrderMissing,
                order_id: order_id.clone(),
                evidence: format!(
                    "history index {} (process {}) acknowledged it; the final state has no such order",
                    op.index, op.process
                ),
            });
        }
    }

    summarize(state, findings)
}

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
}

fn check_order(
    order: &OrderRecord,
    effects: &OrderEffects<'_>,
    state: &FinalState,
    out: &mut Vec<Finding>,
) {
    let id = order.order_id.as_str();
    let (charges, refunds) = (&effects.charges, &effects.refunds);
    let mut push = |kind| {
        out.push(Finding {
            kind,
            order_id: id.to_owned(),
            evidence: effects.describe(order, state),
        })
    };

    if charges.len() > 1 {
        push(Violation::DoubleCharge);
    }
    if refunds.len() > 1 {
        push(Violation::DoubleRefund);
    }
    if !refunds.is_empty() && charges.is_empty() {
        push(Violation::RefundWithoutCharge);
    }
    let live_shipments = effects
        .shipments
        .iter()
        .filter(|s| s.status == ShipmentStatus::Created)
        .count();
    let reserved = effects
        .reservations
        .iter()
        .filter(|r| r.status.holds())
        .count();
    let released = effects
        .reservations
        .iter()
        .filter(|r| r.status == ReservationStatus::Released)
        .count();
    match order.status {
        OrderStatus::Completed => {
            if charges.is_empty() {
                push(Violation::LostCharge);
            }
            if !refunds.is_empty() {
                push(Violation::RefundOnCompleted);
            }
            if state.has_service(Role::Shipping) && live_shipments != 1 {
                push(Violation::MissingShipment);
            }
            if state.has_service(Role::Inventory) && released > 0 {
                push(Violation::StockReleasedOnCompleted);
            }
            if state.has_service(Role::Inventory)
                && !order.items.is_empty()
                && reserved == 0
                && released == 0
            {
                push(Violation::StockNotCommitted);
            }
        }
        OrderStatus::Rejected | OrderStatus::Compensated => {
            let compensated = order.status == OrderStatus::Compensated;
            if compensated && charges.is_empty() {
                push(Violation::LostCharge);
            }
            if charges.len() > refunds.len() {
                push(Violation::LostRefund);
            }
            if let (Some(c), Some(r)) = (charges.first(), refunds.first()) {
                if c.amount != r.amount {
                    push(Violation::RefundAmountMismatch);
                }
            }
            if state.has_service(Role::Shipping) && live_shipments > 0 {
                push(Violation::ShipmentNotCancelled);
            }
            if state.has_service(Role::Inventory) && reserved > 0 {
                push(Violation::StockNotReleased);
            }
        }
        _ => push(Violation::StuckSaga),
    }
}

fn summarize(state: &FinalState, findings: Vec<Finding>) -> Verdict<Details> {
    let mut by_status: BTreeMap<OrderStatus, usize> = BTreeMap::new();
    for o in &state.orders {
        *by_status.entry(o.status).or_default() += 1;
    }
    let mut counts: BTreeMap<Violation, usize> = BTreeMap::new();
    for finding in &findings {
        *counts.entry(finding.kind).or_default() += 1;
    }
    let validity = if !findings.is_empty() {
        Validity::Invalid
    } else if !state.read_errors.is_empty() {
        Validity::Unknown
    } else {
        Validity::Valid
    };
    let summary = match validity {
        Validity::Valid => format!(
            "all {} orders ended in a legal state with exactly their effects",
            state.orders.len()
        ),
        Validity::Invalid => {
            let parts: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
            format!("{} violations: {}", findings.len(), parts.join(", "))
        }
        Validity::Unknown => format!(
            "final state is partial ({} read errors); cannot prove every effect",
            state.read_errors.len()
        ),
    };
    let violations_not_listed = findings.len().saturating_sub(MAX_LISTED_VIOLATIONS);
    Verdict::new(
        validity,
        summary,
        Details {
            orders: state.orders.len(),
            payment_records: state.payments.len(),
            by_status,
            violation_counts: counts,
            violations: findings.into_iter().take(MAX_LISTED_VIOLATIONS).collect(),
            violations_not_listed,
            read_errors: state.read_errors.clone(),
        },
    )
}
