//! Bounded arithmetic: quantities and amounts above the documented maximums, releases that
//! name no reservation or more than it holds, and numbers that are not 64-bit integers are a
//! 4xx JSON error, and stock, reservations, the ledger and the orders stay as they were.

use serde_json::{json, Value};

use crate::cluster::{Cluster, Spec};

/// Everything the admin reads report.
fn snapshot(c: &Cluster) -> Value {
    json!({
        "stock": c.admin_all("n1", "inventory", "/admin/stock"),
        "reservations": c.admin_all("n1", "inventory", "/admin/reservations"),
        "releases": c.admin_all("n1", "inventory", "/admin/releases"),
        "ledger": c.admin_all("n1", "payment", "/admin/ledger"),
        "orders": c.admin_all("n1", "order", "/admin/orders"),
    })
}

/// Proves a release of 2^63 - 1 units, a release naming no reservation (or an unknown one, or
/// more units than it holds), a commit of a released reservation, an order for i64::MAX cents
/// or units, a charge for i64::MAX cents, a reserve of i64::MIN units and a quantity of 2^64
/// are each a 4xx JSON error naming the bound or the culprit, and change nothing: stock,
/// reservations, releases, ledger and orders are unchanged.
#[test]
fn out_of_bounds_requests_change_nothing() {
    let c = Spec::new(1, &["inventory", "payment", "shipping", "order"])
        .settings(json!({"initial_stock": {"sku-1": 10}}))
        .start();
    c.await_leader("inventory", None);
    let inv = |p: &str| format!("{}{p}", c.url("n1", "inventory"));
    let (s, b) = c.post(&inv("/reserve"), Some("r-1"), r#"{"sku":"sku-1","qty":3}"#);
    assert_eq!(s, 201, "{b}");
    let (s, b) = c.post(&inv("/reserve"), Some("r-2"), r#"{"sku":"sku-1","qty":2}"#);
    assert_eq!(s, 201, "{b}");
    let (s, b) = c.post(
        &inv("/release"),
        Some("rel-2"),
        r#"{"sku":"sku-1","qty":2,"reservation":"r-2"}"#,
    );
    assert_eq!(s, 201, "{b}");
    let before = snapshot(&c);
    assert_eq!(before["stock"][0]["available"], 7, "{before}");
    let max = i64::MAX;
    let min = i64::MIN;
    let order = |items: &str, amount: &str| {
        format!(r#"{{"customer":"c","items":[{items}],"amount":{amount}}}"#)
    };
    let cases: Vec<(String, &str, String, u16, &str)> = vec![
        (
            inv("/release"),
            "x1",
            format!(r#"{{"sku":"sku-1","qty":{max},"reservation":"r-1"}}"#),
            400,
            "bad_quantity",
        ),
        (
            inv("/release"),
            "x2",
            r#"{"sku":"sku-1","qty":3}"#.into(),
            400,
            "reservation_required",
        ),
        (
            inv("/release"),
            "x3",
            r#"{"sku":"sku-1","qty":3,"reservation":"nope"}"#.into(),
            422,
            "no_reservation",
        ),
        (
            inv("/release"),
            "x4",
            r#"{"sku":"sku-1","qty":4,"reservation":"r-1"}"#.into(),
            422,
            "reservation_mismatch",
        ),
        (
            inv("/release"),
            "x5",
            r#"{"sku":"sku-1","qty":2,"reservation":"r-2"}"#.into(),
            422,
            "not_reserved",
        ),
        (
            inv("/commit"),
            "x6",
            r#"{"sku":"sku-1","qty":2,"reservation":"r-2"}"#.into(),
            422,
            "not_reserved",
        ),
        (
            inv("/commit"),
            "x7",
            r#"{"sku":"sku-1","qty":3}"#.into(),
            400,
            "reservation_required",
        ),
        (
            inv("/reserve"),
            "x8",
            format!(r#"{{"sku":"sku-1","qty":{min}}}"#),
            400,
            "bad_quantity",
        ),
        (
            inv("/reserve"),
            "x9",
            format!(r#"{{"sku":"sku-1","qty":{max}}}"#),
            400,
            "bad_quantity",
        ),
        (
            inv("/reserve"),
            "x10",
            r#"{"sku":"sku-1","qty":18446744073709551616}"#.into(),
            422,
            "invalid_body",
        ),
        (
            format!("{}/charge", c.url("n1", "payment")),
            "x11",
            format!(r#"{{"order_id":"o-1","amount":{max}}}"#),
            400,
            "bad_amount",
        ),
        (
            format!("{}/orders", c.url("n1", "order")),
            "x12",
            order(r#"{"sku":"sku-1","qty":1}"#, &max.to_string()),
            400,
            "bad_amount",
        ),
        (
            format!("{}/orders", c.url("n1", "order")),
            "x13",
            order(&format!(r#"{{"sku":"sku-1","qty":{max}}}"#), "100"),
            400,
            "bad_quantity",
        ),
    ];
    for (url, key, body, status, code) in &cases {
        let (s, b) = c.post(url, Some(key), body);
        assert_eq!(
            (s, b["error"].as_str()),
            (*status, Some(*code)),
            "{url} {body}: {b}"
        );
        assert!(b["message"].is_string(), "{b}");
    }
    assert_eq!(
        snapshot(&c),
        before,
        "an out-of-bounds request changed something"
    );
}
