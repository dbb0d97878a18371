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

/// Most units one order item, reserve, release or commit may name (the pipeline refuses more
/// with a 400; docs/contracts.md §2).
pub const MAX_QTY_UNITS: i64 = 1_000_000;
/// Most cents one order, charge or refund may name (docs/contracts.md §2).
pub const MAX_AMOUNT_CENTS: i64 = 1_000_000_000_000;

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

/// Every kind of effect violation the effects check names (docs/contracts.md §9 lists them).
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
    /// Refund amount differs from the charge it gives back.
    RefundAmountMismatch,
    /// A completed order was refunded.
    RefundOnCompleted,
    /// Not in a terminal state after quiesce.
    StuckSaga,
    /// A client was told the order was accepted (or read it), but the service does not know it
    /// under that key.
    AcknowledgedOrderMissing,
    /// An effect record (payment, shipment, order reservation or release) for an order the
    /// order service does not know.
    EffectWithoutOrder,
    /// Completed without a live shipment.
    MissingShipment,
    /// Rejected or compensated but a shipment is still live.
    ShipmentNotCancelled,
    /// Rejected or compensated but stock is still held for it (reserved or committed).
    StockNotReleased,
    /// Completed but an item's reservation was released.
    StockReleasedOnCompleted,
    /// Completed but an item's stock is only reserved, not committed.
    StockNotCommitted,
    /// A charge of another amount than its order's.
    ChargeAmountMismatch,
    /// A refund that does not name its order's charge.
    RefundNotLinked,
    /// Rejected, yet a charge or refund was recorded: a charge that landed makes the order
    /// compensated, never rejected.
    RejectedButCharged,
    /// An item of an order past the reserve step has no reservation.
    MissingReservation,
    /// More than one reservation for one order item, or for one stock-workload key.
    DoubleReservation,
    /// A reservation whose SKU or quantity differs from its order item's (or names no item).
    ReservationMismatch,
    /// An effect record whose key is not the one the pipeline derives for its order and step
    /// (`<order_id>:<step>`), or a stock-workload record under an order's key.
    WrongEffectKey,
    /// An order whose idempotency key no client's `place-order` used.
    OrderNotPlaced,
    /// An order whose items or amount differ from what its client placed.
    OrderPayloadMismatch,
    /// More than one order for one idempotency key, or one order id listed twice.
    DoubleOrder,
    /// More than one shipment record for one order.
    DoubleShipment,
    /// A stock-workload reservation or release whose key no client's `reserve` or `release`
    /// used.
    UnrequestedEffect,
    /// A SKU with fewer than zero units available.
    NegativeStock,
    /// A SKU whose `initial - available` differs from the units its live reservations hold
    /// (reserved or committed, orders' and stock clients' alike), or that has records but no
    /// stock record.
    StockNotConserved,
    /// A release that returned more than its reservation held: it names no reservation of its
    /// SKU, another quantity, a reservation that is not released, or one released before.
    OverRelease,
    /// An amount or quantity outside the documented bounds: below 1, or above
    /// [`MAX_AMOUNT_CENTS`] / [`MAX_QTY_UNITS`].
    BadAmount,
    /// A client read a terminal status and the order later had another one.
    TerminalStatusChanged,
}

impl EffectViolation {
    /// Every kind, in declaration order.
    pub const ALL: [EffectViolation; 32] = [
        EffectViolation::DoubleCharge,
        EffectViolation::DoubleRefund,
        EffectViolation::RefundWithoutCharge,
        EffectViolation::LostRefund,
        EffectViolation::LostCharge,
        EffectViolation::RefundAmountMismatch,
        EffectViolation::RefundOnCompleted,
        EffectViolation::StuckSaga,
        EffectViolation::AcknowledgedOrderMissing,
        EffectViolation::EffectWithoutOrder,
        EffectViolation::MissingShipment,
        EffectViolation::ShipmentNotCancelled,
        EffectViolation::StockNotReleased,
        EffectViolation::StockReleasedOnCompleted,
        EffectViolation::StockNotCommitted,
        EffectViolation::ChargeAmountMismatch,
        EffectViolation::RefundNotLinked,
        EffectViolation::RejectedButCharged,
        EffectViolation::MissingReservation,
        EffectViolation::DoubleReservation,
        EffectViolation::ReservationMismatch,
        EffectViolation::WrongEffectKey,
        EffectViolation::OrderNotPlaced,
        EffectViolation::OrderPayloadMismatch,
        EffectViolation::DoubleOrder,
        EffectViolation::DoubleShipment,
        EffectViolation::UnrequestedEffect,
        EffectViolation::NegativeStock,
        EffectViolation::StockNotConserved,
        EffectViolation::OverRelease,
        EffectViolation::BadAmount,
        EffectViolation::TerminalStatusChanged,
    ];

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
            EffectViolation::ChargeAmountMismatch => "charge-amount-mismatch",
            EffectViolation::RefundNotLinked => "refund-not-linked",
            EffectViolation::RejectedButCharged => "rejected-but-charged",
            EffectViolation::MissingReservation => "missing-reservation",
            EffectViolation::DoubleReservation => "double-reservation",
            EffectViolation::ReservationMismatch => "reservation-mismatch",
            EffectViolation::WrongEffectKey => "wrong-effect-key",
            EffectViolation::OrderNotPlaced => "order-not-placed",
            EffectViolation::OrderPayloadMismatch => "order-payload-mismatch",
            EffectViolation::DoubleOrder => "double-order",
            EffectViolation::DoubleShipment => "double-shipment",
            EffectViolation::UnrequestedEffect => "unrequested-effect",
            EffectViolation::NegativeStock => "negative-stock",
            EffectViolation::StockNotConserved => "stock-not-conserved",
            EffectViolation::OverRelease => "over-release",
            EffectViolation::BadAmount => "bad-amount",
            EffectViolation::TerminalStatusChanged => "terminal-status-changed",
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

    /// Proves violation names are the kebab-case `results.json` keys, for every kind.
    #[test]
    fn violation_names_match_serde() {
        for v in EffectViolation::ALL {
            let json = serde_json::to_string(&v).expect("serializes");
            assert_eq!(json, format!("\"{}\"", v.as_str()));
        }
    }
}
