//! Authenticated roles: without the cluster secret, or with a wrong one, nothing but the open
//! routes answers and nothing changes; the secret can be rotated on a running cluster.

use std::time::Duration;

use serde_json::json;

use crate::cluster::{fresh_secret, Auth, Cluster, Spec};
use crate::connections::metric;
use crate::raw;
use crate::state::snapshot;

const ORDER: &str = r#"{"customer":"c","items":[{"sku":"sku-1","qty":2}],"amount":250}"#;

/// Places an order through the open API and waits until it is terminal; its id.
fn completed_order(c: &Cluster, key: &str) -> String {
    let base = c.url("n1", "order");
    let mut id = None;
    let placed = c.wait_until(Duration::from_secs(30), || {
        let (s, b) = c.post_as(&format!("{base}/orders"), Some(key), ORDER, Auth::Missing);
        id = b["order_id"].as_str().map(str::to_owned);
        s == 202
    });
    let id = id.filter(|_| placed).expect("the order was accepted");
    let done = c.wait_until(Duration::from_secs(30), || {
        let (s, b) = c.get_as(&format!("{base}/orders/{id}"), Auth::Missing);
        s == 200 && b["status"] == "completed"
    });
    assert!(done, "order {id} did not complete");
    id
}

/// Proves a store write, a lease acquire, a refund, admin reads, a stock read and a store scan
/// are each refused with 401 `unauthorized` (and `www-authenticate: Bearer`) without the
/// secret, with a wrong one, with the secret one byte short or long, or under another scheme;
/// that the stores, leases, ledger, orders, shipments, reservations and stock are the same
/// afterwards; that the public order API, `/health` and `/metrics` answer without the secret;
/// that the refused refund is accepted with the secret (it would have acted); and that no role
/// logged the secret.
#[test]
fn without_the_secret_nothing_answers_and_nothing_changes() {
    let c = Spec::new(1, &["inventory", "payment", "shipping", "order"]).start();
    let id = completed_order(&c, "auth-1");
    let before = snapshot(&c);
    let secret = c.secret();
    let (short, long) = (secret[..secret.len() - 1].to_owned(), format!("{secret}0"));
    let wrong = fresh_secret();
    let bad: [Auth<'_>; 4] = [
        Auth::Missing,
        Auth::Bearer(&wrong),
        Auth::Bearer(&short),
        Auth::Bearer(&long),
    ];
    let (store, payment) = (c.url("n1", "store"), c.url("n1", "payment"));
    let big = 1u64 << 40;
    let write =
        json!({"token": big, "entries": [{"key": format!("orders/{id}"), "value": {}, "seq": 1}]});
    let acquire = json!({"holder": "intruder", "token": big, "ttl_ms": 60000});
    let refund = json!({"order_id": id, "amount": 250});
    let posts = [
        (format!("{store}/kv/order/write"), write.to_string()),
        (format!("{store}/lease/order/acquire"), acquire.to_string()),
        (format!("{payment}/refund"), refund.to_string()),
    ];
    let gets = [
        format!("{payment}/admin/ledger"),
        format!("{}/admin/orders", c.url("n1", "order")),
        format!("{}/admin/leader", c.url("n1", "order")),
        format!("{}/stock/sku-1", c.url("n1", "inventory")),
        format!("{store}/kv/payment/scan"),
    ];
    for auth in bad {
        for (url, body) in &posts {
            let (s, b) = c.post_as(url, Some(&format!("{id}:refund")), body, auth);
            assert_eq!(
                (s, b["error"].as_str()),
                (401, Some("unauthorized")),
                "{url} {auth:?}: {b}"
            );
        }
        for url in &gets {
            let (s, b) = c.get_as(url, auth);
            assert_eq!(
                (s, b["error"].as_str()),
                (401, Some("unauthorized")),
                "{url} {auth:?}: {b}"
            );
        }
    }
    let basic = format!(
        "GET /admin/ledger HTTP/1.1\r\nhost: x\r\nauthorization: Basic {secret}\r\nconnection: close\r\n\r\n"
    );
    let r = raw::exchange(&payment, basic.as_bytes());
    raw::assert_json_error(&r, 401, Some("unauthorized"), "Basic scheme");
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    assert_eq!(snapshot(&c), before, "a refused request changed something");
    let refused = metric(&payment, "requests_unauthorized_total").unwrap_or(0.0);
    assert!(refused >= 9.0, "payment counted {refused} refusals");

    for (role, path) in [
        ("order", format!("/orders/{id}")),
        ("payment", "/health".into()),
        ("store", "/metrics".into()),
    ] {
        let r = raw::get(&c.url("n1", role), &path, None);
        assert_eq!(r.status, 200, "{role} {path} is open: {r:?}");
    }
    let (s, b) = c.post(
        &format!("{payment}/refund"),
        Some(&format!("{id}:refund")),
        &refund.to_string(),
    );
    assert_eq!(s, 201, "the refund is accepted with the secret: {b}");
    for role in ["store", "order", "payment", "inventory", "shipping"] {
        assert!(
            !c.log("n1", role).contains(&secret),
            "{role} logged the secret"
        );
    }
}

/// Waits until the role at `url` answers an authenticated admin read with `status`.
fn answers(c: &Cluster, url: &str, token: &str, status: u16) -> bool {
    c.wait_until(Duration::from_secs(20), || {
        c.get_as(url, Auth::Bearer(token)).0 == status
    })
}

/// Proves the rotation of docs/runbook.md on a running cluster: with every role restarted in
/// turn on a file "old, new" (send old, accept both), then "new, old", then "new", orders
/// complete at every step (also half-way through the second, when some roles send the new
/// secret and others the old), both secrets are accepted until the last step, and after it
/// the old one is refused.
#[test]
fn the_secret_rotates_on_a_running_cluster() {
    let c = Spec::new(1, &["inventory", "payment", "shipping", "order"]).start();
    let old = c.secret();
    let new = fresh_secret();
    let ledger = format!("{}/admin/ledger", c.url("n1", "payment"));
    let roles = ["store", "inventory", "payment", "shipping", "order"];
    completed_order(&c, "rotate-0");
    for (step, text) in [
        (1, format!("{old}\n{new}\n")),
        (2, format!("{new}\n{old}\n")),
        (3, format!("{new}\n")),
    ] {
        c.write_secret_file(&text);
        for (i, role) in roles.iter().enumerate() {
            c.kill("n1", role);
            c.restart("n1", role);
            if step == 2 && i == 2 {
                // store, inventory and payment send the new secret; shipping and order the old.
                completed_order(&c, "rotate-mixed");
            }
        }
        if step >= 2 {
            c.use_secret(&new);
        }
        assert!(answers(&c, &ledger, &new, 200), "step {step}: new refused");
        let old_status = if step == 3 { 401 } else { 200 };
        assert!(
            answers(&c, &ledger, &old, old_status),
            "step {step}: old not {old_status}"
        );
        c.await_leader("order", None);
        completed_order(&c, &format!("rotate-{step}"));
    }
}
