//! Orders and their saga state, as stored under `orders/<id>` in the `order` domain.

use serde::{Deserialize, Serialize};

use crate::http::ApiError;

/// An order's status. The saga writes the next status before it takes the step it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// In the log, saga not started.
    Accepted,
    /// Reserving stock.
    Reserving,
    /// Charging.
    Charging,
    /// Creating the shipment.
    Shipping,
    /// Shipped: taking each item's reserved stock for good.
    Committing,
    /// A step failed; undoing the steps that succeeded, in reverse.
    Compensating,
    /// Reserved, charged, shipped, stock committed.
    Completed,
    /// Failed before any charge; reservations released.
    Rejected,
    /// Failed after the charge; refunded and released.
    Compensated,
}

impl Status {
    /// True for the three terminal statuses.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Status::Completed | Status::Rejected | Status::Compensated
        )
    }

    /// Whether the saga may go from `self` to `next`: forward one step at a time, into
    /// compensation from any forward step, out of it to rejected or compensated, never out of
    /// a terminal status.
    pub fn can_become(self, next: Status) -> bool {
        use Status::*;
        matches!(
            (self, next),
            (Accepted, Reserving)
                | (Reserving, Charging)
                | (Charging, Shipping)
                | (Shipping, Committing)
                | (Committing, Completed)
                | (Reserving | Charging | Shipping | Committing, Compensating)
                | (Compensating, Rejected | Compensated)
        )
    }

    /// The lowercase name (also the metric label).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Accepted => "accepted",
            Status::Reserving => "reserving",
            Status::Charging => "charging",
            Status::Shipping => "shipping",
            Status::Committing => "committing",
            Status::Compensating => "compensating",
            Status::Completed => "completed",
            Status::Rejected => "rejected",
            Status::Compensated => "compensated",
        }
    }
}

/// One saga step: what the effect's idempotency key names (`<order_id>:<step>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StepName {
    /// Reserve item `i`'s stock.
    Reserve(usize),
    /// Take the money.
    Charge,
    /// Create the shipment.
    Ship,
    /// Take item `i`'s reserved stock for good (after the shipment).
    Commit(usize),
    /// Compensation: cancel the shipment.
    CancelShip,
    /// Compensation: give the money back.
    Refund,
    /// Compensation: release item `i`'s stock.
    Release(usize),
}

impl std::fmt::Display for StepName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StepName::Reserve(i) => write!(f, "reserve:{i}"),
            StepName::Charge => f.write_str("charge"),
            StepName::Ship => f.write_str("ship"),
            StepName::Commit(i) => write!(f, "commit:{i}"),
            StepName::CancelShip => f.write_str("cancel-ship"),
            StepName::Refund => f.write_str("refund"),
            StepName::Release(i) => write!(f, "release:{i}"),
        }
    }
}

impl std::str::FromStr for StepName {
    type Err = String;

    fn from_str(s: &str) -> Result<StepName, String> {
        let item = |i: &str| i.parse::<usize>().map_err(|_| format!("step '{s}'"));
        Ok(match s.split_once(':') {
            Some(("reserve", i)) => StepName::Reserve(item(i)?),
            Some(("release", i)) => StepName::Release(item(i)?),
            Some(("commit", i)) => StepName::Commit(item(i)?),
            None if s == "charge" => StepName::Charge,
            None if s == "ship" => StepName::Ship,
            None if s == "cancel-ship" => StepName::CancelShip,
            None if s == "refund" => StepName::Refund,
            _ => return Err(format!("'{s}' is not a saga step")),
        })
    }
}

impl Serialize for StepName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for StepName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<StepName, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepOutcome {
    /// It happened.
    Ok,
    /// It was definitely refused.
    Refused,
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
    /// Which step.
    pub step: StepName,
    /// Ok or refused.
    pub outcome: StepOutcome,
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
    /// Indices of items whose stock is committed (taken for good; never released).
    #[serde(default)]
    pub committed: Vec<usize>,
}

/// An order and its saga state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRecord {
    /// Derived from the idempotency key.
    pub order_id: String,
    /// The client's key.
    pub idempotency_key: String,
    /// Offset in the intake partition that accepted it (within that node's incarnation).
    pub offset: u64,
    /// The node whose intake partition accepted it.
    #[serde(default)]
    pub partition: String,
    /// Where the saga is.
    pub status: Status,
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
        self.status.is_terminal()
    }

    /// Moves the saga to `next`. An illegal transition is a defect in the saga driver.
    pub fn become_(&mut self, next: Status) {
        assert!(
            self.status.can_become(next),
            "order {}: illegal saga transition {} -> {}",
            self.order_id,
            self.status.as_str(),
            next.as_str()
        );
        self.status = next;
    }

    /// The request that placed it, as the effect ledger compares replays: its key and body.
    /// Whether `req` asks for the order this record holds.
    pub fn same_payload(&self, req: &OrderRequest) -> bool {
        self.customer == req.customer && self.items == req.items && self.amount == req.amount
    }

    pub fn placed_by(&self) -> serde_json::Value {
        placed(
            &self.idempotency_key,
            &OrderRequest {
                customer: self.customer.clone(),
                items: self.items.clone(),
                amount: self.amount,
            },
        )
    }
}

/// An order request under its key, as [`OrderRecord::placed_by`] gives it back.
pub fn placed(key: &str, req: &OrderRequest) -> serde_json::Value {
    serde_json::json!({"key": key, "order": req})
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
        crate::limits::quantity(&format!("item {}", item.sku), item.qty)?;
    }
    crate::limits::amount(req.amount)
}
