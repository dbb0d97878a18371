//! The vocabulary of effects: the saga steps, the idempotency keys the pipeline derives from
//! (order id, step), the effect ledgers, and the kinds of effect violation the checker names.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A kind of saga step, without the item index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepKind {
    /// Reserve one item's stock.
    Reserve,
    /// Take the money.
    Charge,
    /// Create the shipment.
    Ship,
    /// Take one item's reserved stock for good (the saga completed).
    Commit,
    /// Compensation: cancel the shipment.
    CancelShip,
    /// Compensation: give the money back.
    Refund,
    /// Compensation: release one item's stock.
    Release,
}

impl StepKind {
    /// The name in a key: `reserve`, `cancel-ship`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::Reserve => "reserve",
            StepKind::Charge => "charge",
            StepKind::Ship => "ship",
            StepKind::Commit => "commit",
            StepKind::CancelShip => "cancel-ship",
            StepKind::Refund => "refund",
            StepKind::Release => "release",
        }
    }

    /// Whether the step names an order item (`reserve:<i>`).
    pub fn per_item(self) -> bool {
        matches!(
            self,
            StepKind::Reserve | StepKind::Commit | StepKind::Release
        )
    }

    const ALL: [StepKind; 7] = [
        StepKind::Reserve,
        StepKind::Charge,
        StepKind::Ship,
        StepKind::Commit,
        StepKind::CancelShip,
        StepKind::Refund,
        StepKind::Release,
    ];
}

impl fmt::Display for StepKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// One saga step of an order: its kind and, for per-item steps, the item's index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Step {
    /// Which step.
    pub kind: StepKind,
    /// The item index of a per-item step.
    pub item: Option<usize>,
}

impl Step {
    /// A step that names no item.
    pub fn once(kind: StepKind) -> Step {
        assert!(!kind.per_item(), "{kind} needs an item");
        Step { kind, item: None }
    }

    /// A per-item step.
    pub fn item(kind: StepKind, item: usize) -> Step {
        assert!(kind.per_item(), "{kind} names no item");
        Step {
            kind,
            item: Some(item),
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.item {
            Some(i) => write!(f, "{}:{i}", self.kind),
            None => f.write_str(self.kind.as_str()),
        }
    }
}

impl FromStr for Step {
    type Err = String;

    fn from_str(s: &str) -> Result<Step, String> {
        let (name, item) = match s.split_once(':') {
            Some((n, i)) => (
                n,
                Some(
                    i.parse::<usize>()
                        .map_err(|_| format!("step '{s}': '{i}' is not an item index"))?,
                ),
            ),
            None => (s, None),
        };
        let kind = StepKind::ALL
            .into_iter()
            .find(|k| k.as_str() == name)
            .ok_or_else(|| format!("'{s}' is not a saga step"))?;
        match (kind.per_item(), item) {
            (true, Some(_)) | (false, None) => Ok(Step { kind, item }),
            (true, None) => Err(format!("step '{s}' needs an item index ({name}:<i>)")),
            (false, Some(_)) => Err(format!("step '{s}' takes no item index")),
        }
    }
}

/// The idempotency key of one saga step of an order: `<order_id>:<step>`, e.g. `o-12:charge`,
/// `o-12:reserve:0` (docs/contracts.md §2).
pub fn effect_key(order_id: &str, step: Step) -> String {
    format!("{order_id}:{step}")
}

/// Splits an effect key into its order id and step, if it is one.
pub fn parse_effect_key(key: &str) -> Option<(&str, Step)> {
    // The order id has no ':'; the step may (`reserve:0`).
    let (order, step) = key.split_once(':')?;
    Some((order, step.parse().ok()?))
}

/// The effect ledgers the idempotency check counts keys in (declared by name, so ordered
/// alphabetically).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ledger {
    /// Client orders (`place-order` keys).
    Orders,
    /// Charges and refunds.
    Payments,
    /// Stock reservations.
    Reservations,
    /// Shipments and their cancellations.
    Shipments,
}

impl Ledger {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Ledger::Orders => "orders",
            Ledger::Payments => "payments",
            Ledger::Shipments => "shipments",
            Ledger::Reservations => "reservations",
        }
    }
}

impl fmt::Display for Ledger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// Every kind of effect violation the effects check names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EffectViolation {
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
    /// An effect record for an order the order service does not know.
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

impl EffectViolation {
    /// The kebab-case name, as in `results.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            EffectViolation::DoubleCharge => "double-charge",
            EffectViolation::DoubleRefund => "double-refund",
            EffectViolation::RefundWithoutCharge => "refund-without-charge",
            EffectViolation::LostRefund => "lost-refund",
            EffectViolation::LostCharge => "lost-charge",
            EffectViolation::RefundAmountMismatch => "refund-amount-mismatch",
            EffectViolation::RefundOnCompleted => "refund-on-completed",
            EffectViolation::StuckSaga => "stuck-saga",
            EffectViolation::AcknowledgedOrderMissing => "acknowledged-order-missing",
            EffectViolation::EffectWithoutOrder => "effect-without-order",
            EffectViolation::MissingShipment => "missing-shipment",
            EffectViolation::ShipmentNotCancelled => "shipment-not-cancelled",
            EffectViolation::StockNotReleased => "stock-not-released",
            EffectViolation::StockReleasedOnCompleted => "stock-released-on-completed",
            EffectViolation::StockNotCommitted => "stock-not-committed",
        }
    }
}

impl fmt::Display for EffectViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves every step is spelled as the pipeline derives its key and reads back, per-item
    /// steps need their index, and keys split back into order and step.
    #[test]
    fn steps_and_keys_round_trip() {
        for s in [
            Step::item(StepKind::Reserve, 0),
            Step::once(StepKind::Charge),
            Step::once(StepKind::Ship),
            Step::item(StepKind::Commit, 3),
            Step::once(StepKind::CancelShip),
            Step::once(StepKind::Refund),
            Step::item(StepKind::Release, 12),
        ] {
            assert_eq!(s.to_string().parse::<Step>(), Ok(s));
            let key = effect_key("o-0a", s);
            assert_eq!(parse_effect_key(&key), Some(("o-0a", s)));
        }
        assert_eq!(
            effect_key("o-1", Step::once(StepKind::Charge)),
            "o-1:charge"
        );
        assert_eq!(
            effect_key("o-1", Step::item(StepKind::Reserve, 2)),
            "o-1:reserve:2"
        );
        assert!("reserve".parse::<Step>().is_err());
        assert!("charge:1".parse::<Step>().is_err());
        assert!("frob".parse::<Step>().is_err());
        assert_eq!(parse_effect_key("st-p1-3"), None);
    }

    /// Proves violation names are the kebab-case `results.json` keys.
    #[test]
    fn violation_names_match_serde() {
        for v in [
            EffectViolation::DoubleCharge,
            EffectViolation::StockNotCommitted,
            EffectViolation::AcknowledgedOrderMissing,
        ] {
            let json = serde_json::to_string(&v).expect("serializes");
            assert_eq!(json, format!("\"{}\"", v.as_str()));
        }
    }
}
