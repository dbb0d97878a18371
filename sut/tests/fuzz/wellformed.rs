//! Well-formed input, huge numbers included, gets the contract's answer: the first request
//! under a key makes the effect, a repeat returns the stored result, the key with another
//! payload is refused; refunds need their charge, releases their reservation, cancellations
//! their shipment; the store and its leases answer as `sut/src/store/wire.rs` says.

use std::sync::atomic::{AtomicU64, Ordering};

use pipeline::limits::{MAX_AMOUNT_CENTS, MAX_QTY_UNITS};
use proptest::prelude::*;
use serde_json::{json, Value};

use super::requests::{send, Req};
use super::Fuzz;
use crate::raw::Reply;

/// Cases of each property.
const CASES: u32 = 24;

/// Numbers every key is made unique with (shrinking repeats cases).
static NEXT: AtomicU64 = AtomicU64::new(1);

fn key(prefix: &str) -> String {
    format!("fz-{prefix}-{}", NEXT.fetch_add(1, Ordering::SeqCst))
}

/// Cents: small, or the largest the pipeline documents (`pipeline::limits`; above it is bad
/// input, proven in `tests/api/bounds.rs`).
fn amounts() -> BoxedStrategy<i64> {
    prop_oneof![3 => 1i64..100_000, 1 => Just(MAX_AMOUNT_CENTS)].boxed()
}

/// Another well-formed amount than `a`.
fn other(a: i64) -> i64 {
    if a < MAX_AMOUNT_CENTS {
        a + 1
    } else {
        a - 1
    }
}

fn post(f: &Fuzz, role: &str, path: &str, key: &str, body: &Value) -> Reply {
    let req = Req::post(path, Some(key), body.to_string().into_bytes());
    send(&f.c.url("n1", role), &f.secret, &req)
}

/// Places orders (replays and a reused key included); returns the order ids.
pub fn orders(f: &Fuzz) -> Vec<String> {
    let placed = std::sync::Mutex::new(Vec::new());
    let items = prop::collection::vec(("sku-[0-9]", 1i64..5), 1..4);
    f.run(
        CASES,
        100,
        &("[a-z]{1,12}", items, amounts()),
        |(customer, items, amount)| {
            let items: Vec<Value> = items
                .iter()
                .map(|(s, q)| json!({"sku": s, "qty": q}))
                .collect();
            let body = json!({"customer": customer, "items": items, "amount": amount});
            let k = key("o");
            let first = post(f, "order", "/orders", &k, &body);
            let id = first.json()["order_id"].as_str().map(str::to_owned);
            prop_assert!(first.status == 202 && id.is_some(), "order: {first:?}");
            let again = post(f, "order", "/orders", &k, &body);
            prop_assert_eq!(again.status, 202);
            let again_id = again.json()["order_id"].as_str().map(str::to_owned);
            prop_assert_eq!(again_id, id.clone());
            let changed = json!({"customer": customer, "items": items, "amount": other(amount)});
            let reused = post(f, "order", "/orders", &k, &changed);
            prop_assert!(
                reused.status == 422 && reused.json()["error"] == "idempotency_key_reused",
                "{reused:?}"
            );
            placed.lock().expect("ids").extend(id);
            Ok(())
        },
    );
    placed.into_inner().expect("ids")
}

/// Charges, their replays, reused keys, refunds and refunds that match no charge.
pub fn payments(f: &Fuzz) {
    f.run(
        CASES,
        101,
        &("fz-[a-z0-9]{1,12}", amounts()),
        |(order, amount)| {
            // A refund finds its charge under the key `<order>:charge` (`ids::step_key`).
            let order = format!("{order}-{}", key("p"));
            let body = json!({"order_id": order, "amount": amount});
            let k = format!("{order}:charge");
            let first = post(f, "payment", "/charge", &k, &body);
            prop_assert!(
                first.status == 201 && first.json()["record"]["amount"] == amount,
                "charge: {first:?}"
            );
            let again = post(f, "payment", "/charge", &k, &body);
            prop_assert!(
                again.status == 200 && again.json()["replayed"] == true,
                "replay: {again:?}"
            );
            let reused = post(
                f,
                "payment",
                "/charge",
                &k,
                &json!({"order_id": order, "amount": other(amount)}),
            );
            prop_assert!(
                reused.status == 422 && reused.json()["error"] == "idempotency_key_reused",
                "{reused:?}"
            );
            let wrong = post(
                f,
                "payment",
                "/refund",
                &key("r"),
                &json!({"order_id": order, "amount": other(amount)}),
            );
            prop_assert!(
                wrong.status == 422 && wrong.json()["error"] == "refund_amount_mismatch",
                "{wrong:?}"
            );
            let refund = post(f, "payment", "/refund", &key("r"), &body);
            prop_assert!(
                refund.status == 201 && refund.json()["record"]["kind"] == "refund",
                "refund: {refund:?}"
            );
            let none = post(
                f,
                "payment",
                "/refund",
                &key("r"),
                &json!({"order_id": format!("{order}-x"), "amount": amount}),
            );
            prop_assert!(
                none.status == 422 && none.json()["error"] == "no_matching_charge",
                "{none:?}"
            );
            Ok(())
        },
    );
}

/// Reserves (a huge quantity is a definite, stored refusal), their replays and releases.
pub fn stock(f: &Fuzz) {
    let qty = prop_oneof![3 => 1i64..4, 1 => Just(MAX_QTY_UNITS), 1 => 1001i64..MAX_QTY_UNITS];
    f.run(CASES, 102, &("sku-[0-9]", qty), |(sku, qty)| {
        let body = json!({"sku": sku, "qty": qty, "order_id": "fz-stock"});
        let k = key("s");
        let first = post(f, "inventory", "/reserve", &k, &body);
        let refused = first.status == 422 && first.json()["error"] == "insufficient_stock";
        prop_assert!(first.status == 201 || refused, "reserve {qty}: {first:?}");
        prop_assert!(
            qty <= 1000 || refused,
            "more than the stock was reserved: {first:?}"
        );
        let again = post(f, "inventory", "/reserve", &k, &body);
        prop_assert_eq!(again.status, if refused { 422 } else { 200 });
        if !refused {
            let release = json!({"sku": sku, "qty": qty, "order_id": "fz-stock", "reservation": k});
            let rk = key("sr");
            let out = post(f, "inventory", "/release", &rk, &release);
            prop_assert_eq!(out.status, 201, "release: {:?}", out);
            prop_assert_eq!(post(f, "inventory", "/release", &rk, &release).status, 200);
        }
        let r = send(
            &f.c.url("n1", "inventory"),
            &f.secret,
            &Req::get(format!("/stock/{sku}")),
        );
        let available = r.json()["available"].as_i64().unwrap_or(-1);
        prop_assert!(
            r.status == 200 && (0..=1000).contains(&available),
            "stock: {r:?}"
        );
        Ok(())
    });
}

/// Shipments, their replays, cancellations and a cancellation naming another order.
pub fn shipping(f: &Fuzz) {
    f.run(CASES, 103, &"fz-[a-z0-9]{1,12}", |order| {
        let k = key("sh");
        let body = json!({"order_id": order});
        let first = post(f, "shipping", "/ship", &k, &body);
        prop_assert_eq!(first.status, 201, "ship: {:?}", first);
        prop_assert_eq!(post(f, "shipping", "/ship", &k, &body).status, 200);
        let wrong = post(
            f,
            "shipping",
            "/cancel",
            &key("ca"),
            &json!({"order_id": format!("{order}-x"), "shipment_key": k}),
        );
        prop_assert!(
            // Shipments are kept per order: another order has no shipment under that key.
            wrong.status == 422 && wrong.json()["error"] == "no_shipment",
            "{wrong:?}"
        );
        let cancel = json!({"order_id": order, "shipment_key": k});
        let ck = key("ca");
        prop_assert_eq!(post(f, "shipping", "/cancel", &ck, &cancel).status, 201);
        prop_assert_eq!(post(f, "shipping", "/cancel", &ck, &cancel).status, 200);
        Ok(())
    });
}

/// Store writes and reads in the `inventory-eventual` domain (whose writes carry token 0, and which has
/// no lease: 400 `unfenced_domain`), then a lease of the fenced `payment` domain refused at or
/// below its highest token.
pub fn store(f: &Fuzz) {
    let store = f.c.url("n1", "store");
    let value = prop_oneof![
        any::<i64>().prop_map(Value::from),
        ".{0,40}".prop_map(Value::from),
        prop::collection::vec(any::<u64>(), 0..4).prop_map(Value::from),
    ];
    f.run(CASES, 104, &prop::collection::vec(value, 1..4), |values| {
        let keys: Vec<String> = values
            .iter()
            .map(|_| format!("fuzz/{}", key("kv")))
            .collect();
        let entries: Vec<Value> = keys
            .iter()
            .zip(&values)
            .map(|(k, v)| json!({"key": k, "value": v, "seq": NEXT.fetch_add(1, Ordering::SeqCst)}))
            .collect();
        let body = json!({"token": 0, "entries": entries})
            .to_string()
            .into_bytes();
        let w = send(
            &store,
            &f.secret,
            &Req::post("/kv/inventory-eventual/write", None, body),
        );
        let applied = w.json()["applied"]
            .as_array()
            .map(|a| a.iter().all(|x| *x == true));
        prop_assert!(w.status == 200 && applied == Some(true), "write: {w:?}");
        let body = json!({"keys": keys}).to_string().into_bytes();
        let r = send(
            &store,
            &f.secret,
            &Req::post("/kv/inventory-eventual/read", None, body),
        );
        let got: Vec<Value> = r.json()["records"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|rec| rec["value"].clone())
            .collect();
        prop_assert_eq!(got, values);
        Ok(())
    });
    let unfenced = send(&store, &f.secret, &Req::get("/lease/inventory-eventual"));
    assert_eq!(unfenced.status, 400, "{unfenced:?}");
    assert_eq!(unfenced.json()["error"], "unfenced_domain");
    // Every fenced domain's lease is held by this cluster's own roles, so only refusals are
    // asked for here (granting, renewing and releasing: tests/api/leases.rs and store.rs).
    let state = send(&store, &f.secret, &Req::get("/lease/payment"));
    let top = state.json()["max_token"].as_u64().expect("max_token");
    let acquire = |token: u64| {
        let body = json!({"holder": "fuzzer", "token": token, "ttl_ms": 1000}).to_string();
        let r = send(
            &store,
            &f.secret,
            &Req::post("/lease/payment/acquire", None, body.into_bytes()),
        );
        assert_eq!(r.status, 200, "acquire {token}: {r:?}");
        r.json()["granted"].as_bool().expect("granted")
    };
    assert!(!acquire(top), "acquire at the highest token");
    assert!(!acquire(1), "acquire below it");
}
