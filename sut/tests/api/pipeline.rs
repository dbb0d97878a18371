//! Issue 4: the saga pipeline (order, payment, inventory, shipping over the quorum store) on a
//! local 3-node cluster of real processes.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{json, Value};

use crate::cluster::{Cluster, Spec};

const ROLES: &[&str] = &["inventory", "payment", "shipping", "order"];
/// Attempts of one client request that got no definite answer.
pub(crate) const CLIENT_ATTEMPTS: usize = 60;

fn full(settings: Value) -> Spec {
    Spec::new(3, ROLES).settings(settings)
}

fn order_body(i: usize) -> Value {
    json!({
        "customer": format!("c{}", i % 7),
        "items": [{"sku": format!("sku-{}", i % 10), "qty": 1 + i % 3}],
        "amount": 100 + 37 * i,
    })
}

/// Places an order under `key`, retrying answers that are not definite on the next node
/// (skipping `skip`); returns the order id.
fn place(c: &Cluster, key: &str, body: &Value, first: usize, skip: Option<&str>) -> String {
    let nodes: Vec<&String> = c
        .nodes
        .iter()
        .filter(|n| Some(n.as_str()) != skip)
        .collect();
    let mut last = Value::Null;
    for attempt in 0..CLIENT_ATTEMPTS {
        let node = nodes[(first + attempt) % nodes.len()];
        let (s, b) = c.post(
            &format!("{}/orders", c.url(node, "order")),
            Some(key),
            &body.to_string(),
        );
        match s {
            202 => return b["order_id"].as_str().expect("order id").to_owned(),
            400..=499 => panic!("order {key} refused: {s} {b}"),
            _ => last = b,
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("order {key} never accepted: {last}");
}

/// Places `keys` from `threads` concurrent clients.
fn place_all(
    c: &Cluster,
    keys: &[(String, Value)],
    threads: usize,
    skip: Option<&str>,
) -> Vec<String> {
    let next = AtomicUsize::new(0);
    let ids = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for t in 0..threads {
            let (next, ids) = (&next, &ids);
            s.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((key, body)) = keys.get(i) else {
                    return;
                };
                let id = place(c, key, body, t, skip);
                ids.lock().expect("ids").push(id);
            });
        }
    });
    ids.into_inner().expect("ids")
}

/// What the admin reads report, read through `node`.
struct Final {
    orders: Vec<Value>,
    ledger: Vec<Value>,
    shipments: Vec<Value>,
    reservations: Vec<Value>,
    stock: Vec<Value>,
}

fn final_state(c: &Cluster, node: &str) -> Final {
    Final {
        orders: c.admin_all(node, "order", "/admin/orders"),
        ledger: c.admin_all(node, "payment", "/admin/ledger"),
        shipments: c.admin_all(node, "shipping", "/admin/shipments"),
        reservations: c.admin_all(node, "inventory", "/admin/reservations"),
        stock: c.admin_all(node, "inventory", "/admin/stock"),
    }
}

fn is_terminal(o: &Value) -> bool {
    matches!(
        o["status"].as_str(),
        Some("completed" | "rejected" | "compensated")
    )
}

/// Waits until `n` orders exist and all are terminal (reading through `node`).
fn wait_terminal(c: &Cluster, node: &str, n: usize) {
    let mut open = Vec::new();
    let done = c.wait_until(Duration::from_secs(120), || {
        let orders = c.admin_all(node, "order", "/admin/orders");
        open = orders.iter().filter(|o| !is_terminal(o)).cloned().collect();
        orders.len() == n && open.is_empty()
    });
    assert!(done, "sagas still open: {open:?}");
}

/// Every order's end state checked against its effects, and stock against reservations:
/// the count per status and every violation found (with its evidence).
fn check_effects(f: &Final) -> (BTreeMap<String, usize>, Vec<String>) {
    let of = |list: &[Value], id: &Value| -> Vec<Value> {
        list.iter()
            .filter(|r| r["order_id"] == *id)
            .cloned()
            .collect()
    };
    let mut by_status = BTreeMap::new();
    let mut bad = Vec::new();
    for o in &f.orders {
        let id = &o["order_id"];
        let pays = of(&f.ledger, id);
        let charges: Vec<&Value> = pays.iter().filter(|p| p["kind"] == "charge").collect();
        let refunds: Vec<&Value> = pays.iter().filter(|p| p["kind"] == "refund").collect();
        let live = of(&f.shipments, id)
            .iter()
            .filter(|s| s["status"] == "created")
            .count();
        let resv = of(&f.reservations, id);
        let reserved = resv.iter().filter(|r| r["status"] == "reserved").count();
        let committed = resv.iter().filter(|r| r["status"] == "committed").count();
        let items = o["items"].as_array().map_or(0, Vec::len);
        let status = o["status"].as_str().unwrap_or_default();
        let legal = match status {
            "completed" => {
                charges.len() == 1
                    && charges[0]["amount"] == o["amount"]
                    && refunds.is_empty()
                    && live == 1
                    && resv.len() == items
                    && committed == items
            }
            "compensated" => {
                charges.len() == 1
                    && refunds.len() == 1
                    && charges[0]["amount"] == refunds[0]["amount"]
                    && live == 0
                    && reserved + committed == 0
            }
            "rejected" => {
                charges.is_empty() && refunds.is_empty() && live == 0 && reserved + committed == 0
            }
            _ => false,
        };
        if !legal {
            bad.push(format!(
                "{o}\ncharges {charges:?}\nrefunds {refunds:?}\nreservations {resv:?}"
            ));
        }
        *by_status.entry(status.to_owned()).or_default() += 1;
    }
    for s in &f.stock {
        let held: i64 = f
            .reservations
            .iter()
            .filter(|r| r["sku"] == s["sku"] && r["status"] != "released")
            .map(|r| r["qty"].as_i64().unwrap_or(0))
            .sum();
        let (initial, available) = (
            s["initial"].as_i64().unwrap_or(0),
            s["available"].as_i64().unwrap_or(0),
        );
        if available < 0 || initial - available != held {
            bad.push(format!("stock {s} against {held} units reserved"));
        }
    }
    (by_status, bad)
}

/// Asserts every order ended legal with exactly its effects; returns the count per status.
fn assert_legal(f: &Final) -> BTreeMap<String, usize> {
    let (by_status, bad) = check_effects(f);
    assert!(
        bad.is_empty(),
        "{} violations, first: {}",
        bad.len(),
        bad[0]
    );
    by_status
}

pub(crate) fn metrics(c: &Cluster, node: &str, role: &str) -> String {
    reqwest::blocking::get(format!("{}/metrics", c.url(node, role)))
        .and_then(|r| r.text())
        .expect("metrics")
}

/// Proves 200 orders through the pipeline with a shipping failure rate of 0.3 each end in a
/// legal state (completed: one charge, no refund, one shipment, stock committed; compensated:
/// one charge, one equal refund, no shipment, stock released), both paths taken.
#[test]
fn two_hundred_orders_end_legal() {
    let c = full(json!({"shipping_failure_rate": 0.3})).start();
    let keys: Vec<(String, Value)> = (0..200)
        .map(|i| (format!("k-{i}"), order_body(i)))
        .collect();
    let ids = place_all(&c, &keys, 8, None);
    assert_eq!(ids.len(), 200);
    wait_terminal(&c, "n2", 200);
    let by_status = assert_legal(&final_state(&c, "n3"));
    assert!(
        by_status.get("completed").is_some_and(|n| *n > 100),
        "{by_status:?}"
    );
    assert!(
        by_status.get("compensated").is_some_and(|n| *n > 20),
        "{by_status:?}"
    );
    let (leader, _) = c.await_leader("order", None);
    let mut m = String::new();
    let drained = c.wait_until(Duration::from_secs(5), || {
        m = metrics(&c, &leader, "order");
        m.contains("consumer_lag_records 0")
    });
    assert!(drained, "consumer lag did not return to 0:\n{m}");
    for needle in [
        "requests_total{downstream=\"payment\"}",
        "requests_total{downstream=\"inventory\"}",
        "requests_total{downstream=\"shipping\"}",
        "quorum_write_duration_seconds_bucket{state=\"order\"",
        "leader_elections_total{domain=\"order\"} 1",
    ] {
        assert!(
            m.contains(needle),
            "{needle} missing from the leader's metrics:\n{m}"
        );
    }
}

/// Proves the effects test can fail: with `--no-compensation` (shipping failure rate 0.5) the
/// failed sagas keep their charge and their reservations.
#[test]
fn without_compensation_failed_sagas_keep_effects() {
    let c = full(json!({"shipping_failure_rate": 0.5}))
        .flag("order", "--no-compensation")
        .start();
    let keys: Vec<(String, Value)> = (0..20)
        .map(|i| (format!("nc-{i}"), order_body(i)))
        .collect();
    place_all(&c, &keys, 4, None);
    wait_terminal(&c, "n1", 20);
    let (by_status, bad) = check_effects(&final_state(&c, "n1"));
    let failed = by_status.get("compensated").copied().unwrap_or(0);
    assert!(failed > 0, "{by_status:?}");
    assert_eq!(
        bad.len(),
        failed,
        "each failed saga kept its effects: {bad:?}"
    );
}

/// Orders placed while payment is dead: each makes one charge key, a logical request.
const DEAD_PAYMENT_ORDERS: usize = 30;

/// The order leader's counts of calls to payment: (logical requests, that is distinct keys;
/// retries, every later attempt under a key; budget refusals).
type Calls = (f64, f64, f64);

/// Kills every payment process, places [`DEAD_PAYMENT_ORDERS`] orders, and polls the order
/// leader's counts (up to 30 s) until every order's charge was sent and `settled` holds, and
/// again two seconds later: the counts then, or `Err` with the last counts where it did not hold.
fn calls_to_dead_payment(spec: Spec, settled: impl Fn(Calls) -> bool) -> Result<Calls, Calls> {
    let c = spec.start();
    for n in ["n1", "n2", "n3"] {
        c.kill(n, "payment");
    }
    let keys: Vec<(String, Value)> = (0..DEAD_PAYMENT_ORDERS)
        .map(|i| (format!("rb-{i}"), order_body(i)))
        .collect();
    place_all(&c, &keys, 4, None);
    let (leader, _) = c.await_leader("order", None);
    let value = |m: &str, name: &str| -> f64 {
        let prefix = format!("{name}{{downstream=\"payment\"}} ");
        m.lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    };
    let counts = || -> Calls {
        let m = metrics(&c, &leader, "order");
        (
            value(&m, "requests_total"),
            value(&m, "retry_attempts_total"),
            value(&m, "retry_budget_exhausted_total"),
        )
    };
    let mut last = (0.0, 0.0, 0.0);
    let held = c.wait_until(Duration::from_secs(30), || {
        last = counts();
        last.0 >= DEAD_PAYMENT_ORDERS as f64 && settled(last)
    });
    if !held {
        return Err(last);
    }
    // Two more seconds of saga retries must not change the verdict.
    std::thread::sleep(Duration::from_secs(2));
    let later = counts();
    if settled(later) {
        Ok(later)
    } else {
        Err(later)
    }
}

/// Proves the retry budget caps the retry load on a dead downstream (ratio 0.1, no floor):
/// once every order's charge was sent (one logical request per key) and the budget has said
/// no, retries stay within a fifth of the requests, also two seconds later; and that without
/// it (`--no-retry-budget`) the calls are retried, at least 1.5 retries per request, and the
/// budget never says no.
#[test]
fn retry_budget_caps_retries_to_a_dead_downstream() {
    let settings = json!({"retry_budget_ratio": 0.1, "retry_budget_floor_per_s": 0});
    let capped =
        |(requests, retries, refused): Calls| refused > 0.0 && retries <= 0.2 * requests + 1.0;
    let with = calls_to_dead_payment(full(settings.clone()), capped);
    eprintln!("with a budget (requests, retries, refused): {with:?}");
    assert!(with.is_ok(), "the budget did not cap the retries: {with:?}");
    let uncapped =
        |(requests, retries, refused): Calls| refused == 0.0 && retries >= 1.5 * requests;
    let without =
        calls_to_dead_payment(full(settings).flag("order", "--no-retry-budget"), uncapped);
    eprintln!("without a budget (requests, retries, refused): {without:?}");
    assert!(without.is_ok(), "without a budget: {without:?}");
}

/// Proves an overloaded role sheds load: beyond `max_in_flight_requests` it answers 503 with
/// `x-do-not-retry: 1`, and nothing it shed was applied.
#[test]
fn overload_is_shed_with_do_not_retry() {
    let c = Spec::new(1, &["payment"])
        .settings(json!({"max_in_flight_requests": 1}))
        .start();
    let url = format!("{}/charge", c.url("n1", "payment"));
    let client = reqwest::blocking::Client::new();
    let secret = c.secret();
    let answers: Vec<(u16, bool)> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..32)
            .map(|i| {
                let (client, url, secret) = (&client, &url, &secret);
                s.spawn(move || {
                    let r = client
                        .post(url)
                        .bearer_auth(secret)
                        .header("idempotency-key", format!("o-{i}:charge"))
                        .json(&json!({"order_id": format!("o-{i}"), "amount": 5}))
                        .send()
                        .expect("answer");
                    (
                        r.status().as_u16(),
                        r.headers().get("x-do-not-retry").is_some_and(|v| v == "1"),
                    )
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().expect("client")).collect()
    });
    let shed = answers.iter().filter(|(s, _)| *s == 503).count();
    assert!(shed > 0, "{answers:?}");
    assert!(
        answers.iter().filter(|(s, _)| *s == 503).all(|(_, nr)| *nr),
        "{answers:?}"
    );
    let created = answers.iter().filter(|(s, _)| *s == 201).count();
    assert_eq!(c.admin_all("n1", "payment", "/admin/ledger").len(), created);
}

/// Proves that SIGKILL of the order leader mid-run hands the sagas to a new leader with a
/// higher token, and every saga (in flight at the kill, or placed after it) ends legal.
#[test]
fn order_leader_killed_mid_run() {
    let c = full(json!({"shipping_failure_rate": 0.3, "lease_ttl_ms": 1500})).start();
    let (old, old_token) = c.await_leader("order", None);
    let first: Vec<(String, Value)> = (0..20).map(|i| (format!("a-{i}"), order_body(i))).collect();
    place_all(&c, &first, 4, None);
    c.kill(&old, "order");
    let rest: Vec<(String, Value)> = (20..60)
        .map(|i| (format!("a-{i}"), order_body(i)))
        .collect();
    place_all(&c, &rest, 4, Some(&old));
    let (new, new_token) = c.await_leader("order", Some(&old));
    assert!(
        new_token > old_token,
        "new leader {new} token {new_token} after {old_token}"
    );
    let alive = c
        .nodes
        .iter()
        .find(|n| **n != old)
        .expect("a live node")
        .clone();
    wait_terminal(&c, &alive, 60);
    assert_legal(&final_state(&c, &alive));
    let became = c.log_lines("order", "became leader");
    assert!(
        became
            .iter()
            .any(|(n, f)| *n == new && f["token"] == new_token),
        "{became:?}"
    );
}

/// Proves bad input (missing key, reused key with another payload, unknown order, malformed
/// JSON, negative quantity or amount, unknown fields or SKUs) gets a 4xx JSON error from every
/// role and changes nothing in any admin read.
#[test]
fn bad_input_changes_nothing() {
    let c = full(json!({})).start();
    let good = r#"{"customer":"c","items":[{"sku":"sku-1","qty":2}],"amount":1234}"#;
    let id = place(
        &c,
        "good",
        &serde_json::from_str(good).expect("json"),
        0,
        None,
    );
    wait_terminal(&c, "n1", 1);
    let snapshot = |c: &Cluster| {
        let f = final_state(c, "n2");
        json!([f.orders, f.ledger, f.shipments, f.reservations, f.stock])
    };
    let before = snapshot(&c);
    let u = |role: &str, path: &str| format!("{}{path}", c.url("n2", role));
    let charge_key = format!("{id}:charge");
    let cases: Vec<(String, Option<&str>, &str, u16)> = vec![
        (u("order", "/orders"), None, good, 400),
        (
            u("order", "/orders"),
            Some("good"),
            r#"{"customer":"c","items":[{"sku":"sku-1","qty":3}],"amount":1234}"#,
            422,
        ),
        (
            u("order", "/orders"),
            Some("k1"),
            r#"{"customer":"c","items":[{"sku":"sku-1","qty":-1}],"amount":5}"#,
            400,
        ),
        (
            u("order", "/orders"),
            Some("k1"),
            r#"{"customer":"c","items":[{"sku":"sku-1","qty":1}],"amount":-5}"#,
            400,
        ),
        (
            u("order", "/orders"),
            Some("k1"),
            r#"{"customer":"c","items":[],"amount":5}"#,
            400,
        ),
        (
            u("order", "/orders"),
            Some("k1"),
            r#"{"customer":"c","items":[{"sku":"sku-1","qty":1}],"amo"#,
            400,
        ),
        (u("order", "/orders"), Some("k1"), "not json", 400),
        (
            u("payment", "/charge"),
            None,
            r#"{"order_id":"o-9","amount":5}"#,
            400,
        ),
        (
            u("payment", "/charge"),
            Some("p1"),
            r#"{"order_id":"o-9","amount":-5}"#,
            400,
        ),
        (
            u("payment", "/charge"),
            Some("p1"),
            r#"{"order_id":"o-9","amount":5,"x":1}"#,
            422,
        ),
        (
            u("payment", "/charge"),
            Some(charge_key.as_str()),
            r#"{"order_id":"o-9","amount":5}"#,
            422,
        ),
        (
            u("payment", "/refund"),
            Some("p2"),
            r#"{"order_id":"o-9","amount":5}"#,
            422,
        ),
        (
            u("inventory", "/reserve"),
            None,
            r#"{"sku":"sku-1","qty":1}"#,
            400,
        ),
        (
            u("inventory", "/reserve"),
            Some("i1"),
            r#"{"sku":"sku-1","qty":-1}"#,
            400,
        ),
        (
            u("inventory", "/reserve"),
            Some("i1"),
            r#"{"sku":"nope","qty":1}"#,
            422,
        ),
        (
            u("inventory", "/reserve"),
            Some("i1"),
            r#"{"sku":"sku-1","qty":1"#,
            400,
        ),
        (
            u("inventory", "/release"),
            Some("i2"),
            r#"{"sku":"sku-1","qty":2,"reservation":"nope"}"#,
            422,
        ),
        (u("shipping", "/ship"), None, r#"{"order_id":"o-9"}"#, 400),
        (
            u("shipping", "/ship"),
            Some("s1"),
            r#"{"order_id":""}"#,
            400,
        ),
        (
            u("shipping", "/cancel"),
            Some("s2"),
            r#"{"order_id":"o-9","shipment_key":"nope"}"#,
            422,
        ),
    ];
    for (url, key, body, status) in cases {
        let (s, b) = c.post(&url, key, body);
        assert_eq!(s, status, "{url} {key:?} {body}: {b}");
        assert!(
            b["error"].is_string() && b["message"].is_string(),
            "{url} {body}: {b}"
        );
    }
    assert_eq!(c.get(&u("order", "/orders/o-nope")).0, 404);
    assert_eq!(c.get(&u("inventory", "/stock/nope")).0, 404);
    assert_eq!(
        c.get(&u("order", &format!("/orders/{id}"))).1["status"],
        "completed"
    );
    assert_eq!(snapshot(&c), before, "bad input changed the state");
}
