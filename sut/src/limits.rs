//! The documented bounds on quantities and amounts (docs/contracts.md §2). Every request above
//! them is a 400 that changes nothing, and every sum the pipeline makes of them stays far below
//! `i64::MAX`, so checked arithmetic on them never fails in a correct run: a failure is a 4xx,
//! never a wrap.

use crate::http::ApiError;

/// Most units one order item, reserve, release or commit names: 1,000,000.
pub const MAX_QTY_UNITS: i64 = 1_000_000;
/// Most cents one order, charge or refund names: 10^12 (ten billion in whole units).
pub const MAX_AMOUNT_CENTS: i64 = 1_000_000_000_000;
/// Most units of one SKU (`initial_stock`): 10^12. Stock, reservations and releases of a SKU
/// all lie between 0 and its initial stock.
pub const MAX_STOCK_UNITS: i64 = 1_000_000_000_000;

/// 400 `bad_quantity` unless `qty` is 1 to [`MAX_QTY_UNITS`]; `what` names the field.
pub fn quantity(what: &str, qty: i64) -> Result<(), ApiError> {
    if (1..=MAX_QTY_UNITS).contains(&qty) {
        return Ok(());
    }
    Err(ApiError::bad_request(
        "bad_quantity",
        format!("{what}: qty must be 1 to {MAX_QTY_UNITS}, got {qty}"),
    )
    .with("max_qty", MAX_QTY_UNITS.into()))
}

/// 400 `bad_amount` unless `amount` is 1 to [`MAX_AMOUNT_CENTS`].
pub fn amount(amount: i64) -> Result<(), ApiError> {
    if (1..=MAX_AMOUNT_CENTS).contains(&amount) {
        return Ok(());
    }
    Err(ApiError::bad_request(
        "bad_amount",
        format!("amount must be 1 to {MAX_AMOUNT_CENTS} cents, got {amount}"),
    )
    .with("max_amount", MAX_AMOUNT_CENTS.into()))
}

/// 422 `counter_overflow` for a counter that would pass `u64::MAX` (never wraps).
pub fn bump(counter: u64, what: &str) -> Result<u64, ApiError> {
    counter.checked_add(1).ok_or_else(|| {
        ApiError::unprocessable("counter_overflow", format!("{what} would overflow"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves the bounds are inclusive, refuse zero, negatives and the extremes, and that the
    /// largest order (20 items at the maximum) and the largest stock still sum without overflow.
    #[test]
    fn bounds_refuse_the_extremes() {
        assert!(quantity("q", 1).is_ok() && quantity("q", MAX_QTY_UNITS).is_ok());
        for q in [0, -1, MAX_QTY_UNITS + 1, i64::MAX, i64::MIN] {
            let e = quantity("q", q).expect_err("refused");
            assert_eq!((e.status.as_u16(), e.code), (400, "bad_quantity"));
        }
        assert!(amount(1).is_ok() && amount(MAX_AMOUNT_CENTS).is_ok());
        for a in [0, -5, MAX_AMOUNT_CENTS + 1, i64::MAX] {
            assert_eq!(amount(a).expect_err("refused").code, "bad_amount");
        }
        assert!(MAX_QTY_UNITS.checked_mul(20).is_some());
        assert!(MAX_STOCK_UNITS.checked_add(MAX_STOCK_UNITS).is_some());
        assert_eq!(bump(1, "c").expect("2"), 2);
        assert_eq!(
            bump(u64::MAX, "c").expect_err("overflow").code,
            "counter_overflow"
        );
    }
}
