//! Settled reservations leave the SKU record (`sut/src/roles/inventory/archive.rs`): the record
//! every reserve, release and commit reads and writes whole stays small however many
//! reservations a SKU has had, while the admin reads, replays and refusals see every one.

use serde_json::{json, Value};

use crate::cluster::{Cluster, Spec};

/// Attempts of one request that got no definite answer (a 409 in flight, a 503 while a leader
/// is elected).
const ATTEMPTS: usize = 60;

/// POSTs until the answer is definite; returns it.
fn definite(c: &Cluster, path: &str, key: &str, body: &Value) -> (u16, Value) {
    let url = format!("{}{path}", c.url("n1", "inventory"));
    let mut last = (0, Value::Null);
    for _ in 0..ATTEMPTS {
        last = c.post(&url, Some(key), &body.to_string());
        if last.0 < 500 && last.0 != 409 && last.0 != 0 {
            return last;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    panic!("{path} {key}: no definite answer: {last:?}");
}

fn reserve(c: &Cluster, key: &str, sku: &str, qty: i64) -> (u16, Value) {
    definite(
        c,
        "/reserve",
        key,
        &json!({"sku": sku, "qty": qty, "order_id": key}),
    )
}

fn settle(c: &Cluster, path: &str, key: &str, resv: &str, qty: i64) -> (u16, Value) {
    let body = json!({"sku": "sku-0", "qty": qty, "order_id": resv, "reservation": resv});
    definite(c, path, key, &body)
}

/// The SKU record of `sku` as the replica of `node` holds it.
fn sku_record(c: &Cluster, node: &str, sku: &str) -> Value {
    let url = format!(
        "{}/kv/inventory/scan?prefix=sku/{sku}&limit=10",
        c.url(node, "store")
    );
    let (s, body) = c.get(&url);
    assert_eq!(s, 200, "{body}");
    body["items"][0]["value"].clone()
}

fn available(c: &Cluster) -> i64 {
    let (_, s) = c.get(&format!("{}/stock/sku-0", c.url("n1", "inventory")));
    s["available"].as_i64().expect("available")
}

/// Proves that after 60 reservations of one SKU (40 committed, 10 released, 10 still held)
/// and 5 refused reserves, the SKU record on every replica holds the 10 live reservations
/// and at most a batch of settled ones, with the stock conserved, while the admin reads list
/// all 60 reservations with their statuses and the 10 releases; that a replay of an archived
/// reserve gets its first answer with `replays` 1, a replay of an archived refusal its
/// refusal, a commit or release of an archived reservation under a new key is 422
/// `not_reserved`, and an archived commit's key used to commit another reservation is 422
/// `idempotency_key_reused`, none of them changing the stock.
#[test]
fn settled_reservations_leave_the_sku_record() {
    let c = Spec::new(3, &["inventory"])
        .settings(json!({"initial_stock": {"sku-0": 200, "sku-1": 1}}))
        .start();
    c.await_leader("inventory", None);
    for i in 0..60 {
        let (s, b) = reserve(&c, &format!("r{i}"), "sku-0", 2);
        assert_eq!(s, 201, "r{i}: {b}");
        let (path, step) = match i {
            0..40 => ("/commit", "commit"),
            40..50 => ("/release", "release"),
            _ => continue,
        };
        let (s, b) = settle(&c, path, &format!("r{i}:{step}"), &format!("r{i}"), 2);
        assert_eq!(s, 201, "r{i} {step}: {b}");
    }
    for i in 0..5 {
        let (s, b) = reserve(&c, &format!("x{i}"), "sku-1", 2);
        assert_eq!(
            (s, b["error"].as_str()),
            (422, Some("insufficient_stock")),
            "{b}"
        );
    }
    assert_eq!(available(&c), 200 - 2 * 50, "40 committed and 10 held");
    for node in ["n1", "n2", "n3"] {
        let rec = sku_record(&c, node, "sku-0");
        let resv = rec["reservations"].as_object().expect("reservations");
        let live = resv.values().filter(|r| r["status"] == "reserved").count();
        assert_eq!(live, 10, "{node}: the held reservations stay");
        assert!(
            resv.len() <= 10 + 32,
            "{node}: {} reservations kept",
            resv.len()
        );
        assert_eq!(rec["available"], 100, "{node}");
    }
    let all = c.admin_all("n2", "inventory", "/admin/reservations");
    let of = |status: &str| {
        all.iter()
            .filter(|r| r["sku"] == "sku-0" && r["status"] == status)
            .count()
    };
    assert_eq!(
        (of("committed"), of("released"), of("reserved")),
        (40, 10, 10),
        "{all:?}"
    );
    let held: i64 = all
        .iter()
        .filter(|r| r["sku"] == "sku-0" && r["status"] != "released")
        .map(|r| r["qty"].as_i64().unwrap_or(0))
        .sum();
    assert_eq!(held, 200 - 100, "initial - available = the units held");
    let keys: std::collections::BTreeSet<&str> =
        all.iter().filter_map(|r| r["key"].as_str()).collect();
    assert_eq!(keys.len(), all.len(), "each listed once");
    let releases = c.admin_all("n3", "inventory", "/admin/releases");
    assert_eq!(releases.len(), 10, "{releases:?}");

    let (s, b) = reserve(&c, "r0", "sku-0", 2);
    assert_eq!(s, 200, "a replay of an archived reserve: {b}");
    assert_eq!(b["reservation"]["status"], "committed", "{b}");
    let (s, b) = reserve(&c, "x0", "sku-1", 2);
    assert_eq!(
        (s, b["error"].as_str()),
        (422, Some("insufficient_stock")),
        "{b}"
    );
    let (s, b) = settle(&c, "/commit", "r0:commit-again", "r0", 2);
    assert_eq!((s, b["error"].as_str()), (422, Some("not_reserved")), "{b}");
    let (s, b) = settle(&c, "/release", "r1:late-release", "r1", 2);
    assert_eq!((s, b["error"].as_str()), (422, Some("not_reserved")), "{b}");
    let (s, b) = settle(&c, "/commit", "r0:commit", "r55", 2);
    assert_eq!(
        (s, b["error"].as_str()),
        (422, Some("idempotency_key_reused")),
        "an archived key used for another reservation: {b}"
    );
    assert_eq!(available(&c), 100, "nothing changed the stock");
    let r0 = c
        .admin_all("n1", "inventory", "/admin/reservations")
        .into_iter()
        .find(|r| r["key"] == "r0")
        .expect("r0 listed");
    assert_eq!(r0["replays"], 1, "{r0}");
}
