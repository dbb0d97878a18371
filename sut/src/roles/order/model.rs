//! Orders and their saga state, as stored under `orders/<id>` in the `order` domain.

use serde::{Deserialize, Serialize};

use crate::http::ApiError;

/// Order statuses. The saga writes the next status before it takes the step it names.
pub mod status {
    /// In the log, saga not started.
    pub const ACCEPTED: &str = "accepted";
    /// Reserving stock.
    pub const RESERVING: &str = "reserving";
    /// Charging.
    pub const CHARGING: &str = "charging";
    /// Creating the shipment.
    pub const SHIPPING: &str = "shipping";
    /// A step failed; undoing the steps that succeeded, in reverse.
    pub const COMPENSATING: &str = "compensating";
    /// Reserved, charged, shipped.
    pub const COMPLETED: &str = "completed";
    /// Failed before any charge; reservations released.
    pub const REJECTED: &str = "rejected";
    /// Failed after the charge; refunded and released.
    pub const COMPENSATED: &str = "compensated";

    /// True for the three terminal statuses.
    pub fn is_terminal(s: &str) -> bool {
        matches!(s, COMPLETED | REJECTED | COMPENSATED)
    }
}

/// Most items in one order.
pub const MAX_ITEMS: usize = 20;

/// One line item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Item {
    /// SKU.
    pub sku: String,
    /// Units, at least 1.
    pub qty: i64,
}

/// Body of `POST /orders`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderRequest {
    /// Who orders.
    pub customer: String,
    /// What, at least one item.
    pub items: Vec<Item>,
    /// Cents, at least 1.
    pub amount: i64,
}

/// One saga step with a definite outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// `reserve:<i>`, `charge`, `ship`, `cancel-ship`, `refund`, `release:<i>`.
    pub step: String,
    /// `ok` or `refused`.
    pub outcome: String,
    /// The refusal, if refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// When the outcome was known.
    pub at_unix_ms: u64,
    /// The leader token it was taken under.
    pub token: u64,
}

/// Which forward steps succeeded (what compensation must undo).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// Indices of items whose stock is reserved.
    pub reserved: Vec<usize>,
    /// The charge succeeded.
    pub charged: bool,
    /// The shipment was created.
    pub shipped: bool,
}

/// An order and its saga state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRecord {
    /// Derived from the idempotency key.
    pub order_id: String,
    /// The client's key.
    pub idempotency_key: String,
    /// Log offset.
    pub offset: u64,
    /// See [`status`].
    pub status: String,
    /// Why it failed, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Customer.
    pub customer: String,
    /// Items.
    pub items: Vec<Item>,
    /// Cents.
    pub amount: i64,
    /// Steps with definite outcomes, in order.
    pub steps: Vec<Step>,
    /// What succeeded.
    #[serde(default)]
    pub progress: Progress,
    /// When it was accepted.
    pub accepted_unix_ms: u64,
}

impl OrderRecord {
    /// True if the saga is over.
    pub fn is_terminal(&self) -> bool {
        status::is_terminal(&self.status)
    }

    /// Same order as `req`?
    pub fn same_payload(&self, req: &OrderRequest) -> bool {
        self.customer == req.customer && self.items == req.items && self.amount == req.amount
    }
}

/// Checks an order request; the error names the culprit.
pub fn validate(req: &OrderRequest) -> Result<(), ApiError> {
    if req.customer.trim().is_empty() || req.customer.len() > 200 {
        return Err(ApiError::bad_request(
            "bad_customer",
            "customer must be 1 to 200 characters",
        ));
    }
    if req.items.is_empty() || req.items.len() > MAX_ITEMS {
        return Err(ApiError::bad_request(
            "bad_items",
            format!("items must hold 1 to {MAX_ITEMS} entries"),
        ));
    }
    for item in &req.items {
        if item.sku.trim().is_empty() || item.sku.len() > 100 {
            return Err(ApiError::bad_request(
                "bad_sku",
                "every item needs a sku of 1 to 100 characters",
            ));
        }
        if item.qty <= 0 {
            return Err(ApiError::bad_request(
                "bad_quantity",
                format!(
                    "item {}: qty must be at least 1, got {}",
                    item.sku, item.qty
                ),
            ));
        }
    }
    if req.amount <= 0 {
        return Err(ApiError::bad_request(
            "bad_amount",
            format!(
                "amount must be a positive number of cents, got {}",
                req.amount
            ),
        ));
    }
    Ok(())
}
