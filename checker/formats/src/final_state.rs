//! `final-state.json`: what the pipeline's public APIs reported after quiesce.
//!
//! The harness reads these through the services' paginated admin endpoints and writes them here;
//! the checker never talks to the pipeline. The record shapes are the pipeline's admin read
//! items (docs/contracts.md §2); `fixtures/wire/` holds samples both sides' tests read.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::role::Role;

/// An order's saga status, as the order service reports it. Declared (and so ordered) by
/// name, so that maps keyed by status list in alphabetical order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderStatus {
    /// In the log, saga not started.
    Accepted,
    /// Charging.
    Charging,
    /// Charged, then refunded and released after a later step failed.
    Compensated,
    /// A step failed; undoing the steps that succeeded, in reverse.
    Compensating,
    /// Reserved, charged, shipped, stock committed.
    Completed,
    /// Refused before any charge landed (out of stock, payment declined).
    Rejected,
    /// Reserving stock.
    Reserving,
    /// Creating the shipment.
    Shipping,
    /// Shipped; committing each item's reserved stock.
    Committing,
}

impl OrderStatus {
    /// Every status.
    pub const ALL: [OrderStatus; 9] = [
        OrderStatus::Accepted,
        OrderStatus::Reserving,
        OrderStatus::Charging,
        OrderStatus::Shipping,
        OrderStatus::Committing,
        OrderStatus::Compensating,
        OrderStatus::Completed,
        OrderStatus::Rejected,
        OrderStatus::Compensated,
    ];

    /// True for the three terminal statuses.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            OrderStatus::Completed | OrderStatus::Rejected | OrderStatus::Compensated
        )
    }

    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Accepted => "accepted",
            OrderStatus::Reserving => "reserving",
            OrderStatus::Charging => "charging",
            OrderStatus::Shipping => "shipping",
            OrderStatus::Committing => "committing",
            OrderStatus::Compensating => "compensating",
            OrderStatus::Completed => "completed",
            OrderStatus::Rejected => "rejected",
            OrderStatus::Compensated => "compensated",
        }
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// The final state of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FinalState {
    /// Which services were read; checks of a service that was not deployed are skipped rather
    /// than failed. A file without the field (written before it existed, when a failed read
    /// was only a read error) is read as every service read, so that every rule is judged.
    #[serde(default = "every_service")]
    pub services: Vec<Role>,
    /// Every order the order service knows.
    pub orders: Vec<OrderRecord>,
    /// The payment ledger: every charge and refund record.
    pub payments: Vec<PaymentRecord>,
    /// Every shipment record (absent in pipelines without shipping).
    #[serde(default)]
    pub shipments: Vec<ShipmentRecord>,
    /// Stock reservations per order and SKU.
    #[serde(default)]
    pub reservations: Vec<ReservationRecord>,
    /// Stock releases: each names the reservation it gave back (absent in runs recorded
    /// before releases were read).
    #[serde(default)]
    pub releases: Vec<ReleaseRecord>,
    /// Stock per SKU.
    #[serde(default)]
    pub stock: Vec<StockRecord>,
    /// Reads that failed. Non-empty means the state is partial and checks say unknown.
    #[serde(default)]
    pub read_errors: Vec<String>,
}

/// The four pipeline services whose records a final state holds.
fn every_service() -> Vec<Role> {
    vec![Role::Order, Role::Payment, Role::Inventory, Role::Shipping]
}

impl FinalState {
    /// True if `service` was deployed and read.
    pub fn has_service(&self, service: Role) -> bool {
        self.services.contains(&service)
    }
}

/// One order line item.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Item {
    /// Stock keeping unit.
    pub sku: String,
    /// Quantity, at least 1.
    pub qty: i64,
}

/// An order as the order service reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderRecord {
    /// The order id the service assigned.
    pub order_id: String,
    /// The client's idempotency key.
    pub idempotency_key: String,
    /// Saga status.
    pub status: OrderStatus,
    /// Amount in cents.
    pub amount: i64,
    /// Line items.
    #[serde(default)]
    pub items: Vec<Item>,
    /// Why the saga failed or was rejected, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Charge or refund.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PaymentKind {
    /// Money taken.
    Charge,
    /// Money given back.
    Refund,
}

/// One record of the payment ledger: one effect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentRecord {
    /// The idempotency key it was made under.
    pub key: String,
    /// Charge or refund.
    pub kind: PaymentKind,
    /// The order it belongs to.
    pub order_id: String,
    /// Amount in cents.
    pub amount: i64,
    /// The key of the charge a refund gives back (refunds only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charge: Option<String>,
    /// How many times the key was presented again after the first (dedup hits).
    #[serde(default)]
    pub replays: u64,
}

/// A shipment's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShipmentStatus {
    /// Live.
    Created,
    /// Cancelled by a compensation.
    Cancelled,
}

/// One shipment record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShipmentRecord {
    /// Idempotency key.
    pub key: String,
    /// The order.
    pub order_id: String,
    /// A refused create leaves no record.
    pub status: ShipmentStatus,
    /// Dedup hits on the key.
    #[serde(default)]
    pub replays: u64,
}

/// A reservation's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReservationStatus {
    /// Units held for the order.
    Reserved,
    /// Units taken for good (the saga completed).
    Committed,
    /// Units given back.
    Released,
}

impl ShipmentStatus {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            ShipmentStatus::Created => "created",
            ShipmentStatus::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for ShipmentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl fmt::Display for ReservationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReservationStatus::Reserved => "reserved",
            ReservationStatus::Committed => "committed",
            ReservationStatus::Released => "released",
        })
    }
}

impl ReservationStatus {
    /// True while the reservation holds its units (reserved or committed).
    pub fn holds(self) -> bool {
        !matches!(self, ReservationStatus::Released)
    }
}

/// One stock reservation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReservationRecord {
    /// Idempotency key.
    pub key: String,
    /// The order (stock-workload reservations name none, or their own key).
    pub order_id: String,
    /// SKU.
    pub sku: String,
    /// Quantity reserved.
    pub qty: i64,
    /// Its state.
    pub status: ReservationStatus,
    /// Dedup hits on the key, when the inventory service counts them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replays: Option<u64>,
}

/// One stock release: units given back from the reservation it names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReleaseRecord {
    /// Idempotency key.
    pub key: String,
    /// The order (empty for stock-workload releases).
    #[serde(default)]
    pub order_id: String,
    /// SKU.
    pub sku: String,
    /// Units returned.
    pub qty: i64,
    /// The key of the reservation it released.
    pub reservation: String,
    /// Dedup hits on the key.
    #[serde(default)]
    pub replays: u64,
}

/// Stock level of one SKU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StockRecord {
    /// SKU.
    pub sku: String,
    /// Units available now.
    pub available: i64,
    /// Units at the start of the run.
    pub initial: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves a final state without `services` (an older file) judges every service, and one
    /// that lists fewer keeps its list.
    #[test]
    fn missing_services_mean_every_service() {
        let old: FinalState = serde_json::from_str(
            r#"{"orders": [], "payments": [], "shipments": [], "reservations": [], "stock": []}"#,
        )
        .expect("an older final state reads");
        assert_eq!(old.services, every_service());
        let some: FinalState = serde_json::from_str(
            r#"{"services": ["order"], "orders": [], "payments": [], "shipments": [],
                "reservations": [], "stock": []}"#,
        )
        .expect("reads");
        assert_eq!(some.services, vec![Role::Order]);
    }
}
