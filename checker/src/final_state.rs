//! `final-state.json`: what the pipeline's public APIs reported after quiesce.
//!
//! The harness reads these through the services' paginated admin endpoints and writes them here;
//! the checker never talks to the pipeline.

use serde::{Deserialize, Serialize};

/// Order statuses the checker knows. Anything not terminal after quiesce is a stuck saga.
pub mod status {
    /// Charged, shipped, stock committed.
    pub const COMPLETED: &str = "completed";
    /// Refused before any charge landed (e.g. out of stock, payment declined).
    pub const REJECTED: &str = "rejected";
    /// Charged, then refunded and released after a later step failed.
    pub const COMPENSATED: &str = "compensated";

    /// True for the three terminal statuses.
    pub fn is_terminal(s: &str) -> bool {
        matches!(s, COMPLETED | REJECTED | COMPENSATED)
    }
}

/// The final state of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FinalState {
    /// Which services were read (`order`, `payment`, `inventory`, `shipping`); checks of a
    /// service that was not deployed are skipped rather than failed.
    #[serde(default)]
    pub services: Vec<String>,
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
    /// Stock per SKU.
    #[serde(default)]
    pub stock: Vec<StockRecord>,
    /// Reads that failed. Non-empty means the state is partial and checks say unknown.
    #[serde(default)]
    pub read_errors: Vec<String>,
}

impl FinalState {
    /// True if `service` was deployed and read.
    pub fn has_service(&self, service: &str) -> bool {
        self.services.iter().any(|s| s == service)
    }
}

/// One order line item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// Saga status; see [`status`].
    pub status: String,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
    /// How many times the key was presented again after the first (dedup hits).
    #[serde(default)]
    pub replays: u64,
}

/// One shipment record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShipmentRecord {
    /// Idempotency key.
    pub key: String,
    /// The order.
    pub order_id: String,
    /// `created` or `cancelled` (a refused create leaves no record).
    pub status: String,
    /// Dedup hits on the key.
    #[serde(default)]
    pub replays: u64,
}

/// One stock reservation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReservationRecord {
    /// Idempotency key.
    pub key: String,
    /// The order.
    pub order_id: String,
    /// SKU.
    pub sku: String,
    /// Quantity reserved.
    pub qty: i64,
    /// `reserved`, `committed` or `released`.
    pub status: String,
    /// Dedup hits on the key, when the inventory service counts them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replays: Option<u64>,
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
