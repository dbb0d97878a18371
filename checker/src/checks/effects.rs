//! The effects check: every order ends in a legal state, with exactly the effects that state
//! implies. No double effect, no lost effect, no stuck saga.
//!
//! Legal end states:
//! - `completed`: 1 charge, 0 refunds, 1 live shipment (if shipping runs), stock still held
//!   (`reserved` or `committed`);
//! - `rejected`: 0 charges, 0 refunds, no live shipment, no reservation left reserved;
//! - `compensated`: 1 charge, 1 refund of the same amount, no live shipment, stock released.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde_json::json;

use crate::final_state::{
    status, FinalState, OrderRecord, PaymentKind, PaymentRecord, ReservationRecord, ShipmentRecord,
};
use crate::history::{f, OpType};
use crate::rundir::History;
use crate::verdict::{CheckResult, Validity};

/// How many violations are listed in full; the counts always cover all of them.
pub const MAX_LISTED_VIOLATIONS: usize = 1000;

/// Every kind of effect violation, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Violation {
    /// More than one charge record for an order.
    DoubleCharge,
    /// More than one refund record for an order.
    DoubleRefund,
    /// A refund for an order that was never charged.
    RefundWithoutCharge,
    /// Charged, the saga failed, and the money was not given back.
    LostRefund,
    /// Completed (or compensated) without a charge.
    LostCharge,
    /// Refund amount differs from the charge.
    RefundAmountMismatch,
    /// A completed order was refunded.
    RefundOnCompleted,
    /// Not in a terminal state after quiesce.
    StuckSaga,
    /// The client was told the order was accepted, but the service does not know it.
    AcknowledgedOrderMissing,
    /// A payment record for an order the order service does not know.
    EffectWithoutOrder,
    /// Completed without a live shipment, or with more than one.
    MissingShipment,
    /// Rejected or compensated but a shipment is still live.
    ShipmentNotCancelled,
    /// Rejected or compensated but stock is still reserved.
    StockNotReleased,
    /// Completed but its stock reservation was released.
    StockReleasedOnCompleted,
    /// Completed with line items but no stock held for it (reserved or committed).
    StockNotCommitted,
}

/// One violation with its evidence.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// What went wrong.
    pub kind: Violation,
    /// The order.
    pub order_id: String,
    /// What a person needs to see it: status, records, keys.
    pub evidence: String,
}

/// Runs the effects check.
pub fn check(history: &History, state: &FinalState) -> CheckResult {
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
        if op.f != f::PLACE_ORDER || op.op_type != OpType::Ok {
            continue;
        }
        let Some(order_id) = op.value.get("order_id").and_then(|v| v.as_str()) else {
            continue;
        };
        if !orders.contains_key(order_id) {
            findings.push(Finding {
                kind: Violation::AcknowledgedOrderMissing,
                order_id: order_id.to_owned(),
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
        if state.has_service("shipping") {
            let s: Vec<String> = self
                .shipments
                .iter()
                .map(|s| format!("{} {}", s.key, s.status))
                .collect();
            text.push_str(&format!(", shipments {s:?}"));
        }
        if state.has_service("inventory") {
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
        .filter(|s| s.status == "created")
        .count();
    let reserved = effects
        .reservations
        .iter()
        .filter(|r| r.status == "reserved" || r.status == "committed")
        .count();
    let released = effects
        .reservations
        .iter()
        .filter(|r| r.status == "released")
        .count();
    match order.status.as_str() {
        status::COMPLETED => {
            if charges.is_empty() {
                push(Violation::LostCharge);
            }
            if !refunds.is_empty() {
                push(Violation::RefundOnCompleted);
            }
            if state.has_service("shipping") && live_shipments != 1 {
                push(Violation::MissingShipment);
            }
            if state.has_service("inventory") && released > 0 {
                push(Violation::StockReleasedOnCompleted);
            }
            if state.has_service("inventory")
                && !order.items.is_empty()
                && reserved == 0
                && released == 0
            {
                push(Violation::StockNotCommitted);
            }
        }
        status::REJECTED | status::COMPENSATED => {
            let compensated = order.status == status::COMPENSATED;
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
            if state.has_service("shipping") && live_shipments > 0 {
                push(Violation::ShipmentNotCancelled);
            }
            if state.has_service("inventory") && reserved > 0 {
                push(Violation::StockNotReleased);
            }
        }
        _ => push(Violation::StuckSaga),
    }
}

fn summarize(state: &FinalState, findings: Vec<Finding>) -> CheckResult {
    let mut by_status: BTreeMap<&str, usize> = BTreeMap::new();
    for o in &state.orders {
        *by_status.entry(o.status.as_str()).or_default() += 1;
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
            let parts: Vec<String> = counts
                .iter()
                .map(|(k, n)| {
                    let name = serde_json::to_value(k)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default();
                    format!("{n} {name}")
                })
                .collect();
            format!("{} violations: {}", findings.len(), parts.join(", "))
        }
        Validity::Unknown => format!(
            "final state is partial ({} read errors); cannot prove every effect",
            state.read_errors.len()
        ),
    };
    let listed: Vec<&Finding> = findings.iter().take(MAX_LISTED_VIOLATIONS).collect();
    CheckResult {
        name: "effects".into(),
        validity,
        summary,
        details: json!({
            "orders": state.orders.len(),
            "payment_records": state.payments.len(),
            "by_status": by_status,
            "violation_counts": counts,
            "violations": listed,
            "violations_not_listed": findings.len().saturating_sub(MAX_LISTED_VIOLATIONS),
            "read_errors": state.read_errors,
        }),
    }
}
