//! Single effects under idempotency keys, straight against the payment and shipping roles: a
//! refund or a cancellation repeated under one key is one record (and two without
//! idempotency), a repeat while the first is in flight is refused, a forward to a dead leader
//! is a definite refusal that changes nothing.

use std::time::Duration;

use serde_json::{json, Value};

use crate::cluster::{Cluster, Spec};
use crate::pipeline::{metrics, CLIENT_ATTEMPTS};

/// Proves a refund sent twice under one key (to two different nodes, so through leader
/// forwarding) gives one refund record with replay count 1, and that a reused key with another
/// payload and a refund without a charge are refused.
#[test]
fn refund_twice_is_one_record() {
    let c = Spec::new(3, &["payment"]).start();
    let refunds = refund_twice(&c);
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!(refunds[0]["replays"], 1);
    let url = |n: &str, p: &str| format!("{}{p}", c.url(n, "payment"));
    let (s, b) = c.post(
        &url("n1", "/refund"),
        Some("o-1:refund"),
        r#"{"order_id":"o-1","amount":7}"#,
    );
    assert_eq!(
        (s, b["error"].as_str()),
        (422, Some("idempotency_key_reused")),
        "{b}"
    );
    let (s, b) = c.post(
        &url("n2", "/refund"),
        Some("o-2:refund"),
        r#"{"order_id":"o-2","amount":5}"#,
    );
    assert_eq!(
        (s, b["error"].as_str()),
        (422, Some("no_matching_charge")),
        "{b}"
    );
    let (leader, _) = c.await_leader("payment", None);
    let m = metrics(&c, &leader, "payment");
    assert!(
        m.contains("duplicate_effects_total{kind=\"refund\",outcome=\"deduplicated\"} 1"),
        "{m}"
    );
}

/// Proves a charge repeated while the first is still in flight is refused with 409 `in_flight`
/// (it settles nothing), and that once the first has finished the repeat replays its one record.
/// The first charge is held in flight by freezing two of the three store replicas, so its W=2
/// quorum write cannot complete until they resume.
#[test]
fn charge_repeated_in_flight_gets_409() {
    use nix::sys::signal::Signal;
    let c = Spec::new(3, &["payment"])
        .settings(json!({"store_timeout_ms": 8000, "lease_ttl_ms": 20000}))
        .start();
    let (leader, _) = c.await_leader("payment", None);
    let url = format!("{}/charge", c.url(&leader, "payment"));
    let body = r#"{"order_id":"o-9","amount":900}"#;
    let frozen: Vec<String> = c.nodes.iter().filter(|n| **n != leader).cloned().collect();
    for n in &frozen {
        c.signal(n, "store", Signal::SIGSTOP);
    }
    let (first, second) = std::thread::scope(|s| {
        let first = s.spawn(|| c.post(&url, Some("o-9:charge"), body));
        std::thread::sleep(Duration::from_millis(700));
        let second = c.post(&url, Some("o-9:charge"), body);
        for n in &frozen {
            c.signal(n, "store", Signal::SIGCONT);
        }
        (first.join().expect("first request"), second)
    });
    assert_eq!(
        (second.0, second.1["error"].as_str()),
        (409, Some("in_flight")),
        "{}",
        second.1
    );
    assert_eq!(
        first.0, 201,
        "the first charge completes once the stores resume: {}",
        first.1
    );
    let (s3, b3) = c.post(&url, Some("o-9:charge"), body);
    assert_eq!((s3, b3["replayed"].as_bool()), (200, Some(true)), "{b3}");
    let ledger = c.admin_all(&leader, "payment", "/admin/ledger");
    let charges: Vec<&Value> = ledger.iter().filter(|r| r["order_id"] == "o-9").collect();
    assert_eq!(charges.len(), 1, "{ledger:?}");
    assert_eq!(
        charges[0]["replays"], 1,
        "only the settled repeat counts as a replay"
    );
}

/// Proves a follower whose leader is dead answers a forwarded charge with a definite 503
/// `not_leader` ("nothing was sent": the connection was refused), not the 502 that means "maybe
/// sent", and that indeed no charge was made: the new leader's ledger has none for the order.
#[test]
fn forward_to_a_dead_leader_is_definite() {
    let c = Spec::new(3, &["payment"])
        .settings(json!({"lease_ttl_ms": 20000}))
        .start();
    let (leader, _) = c.await_leader("payment", None);
    let follower = c.nodes.iter().find(|n| **n != leader).expect("a follower");
    let view = format!("{}/admin/leader", c.url(follower, "payment"));
    assert!(
        c.wait_until(Duration::from_secs(10), || c.get(&view).1["leader"]
            == leader.as_str()),
        "{follower} never learned the leader {leader}"
    );
    c.kill(&leader, "payment");
    let url = format!("{}/charge", c.url(follower, "payment"));
    let (s, b) = c.post(
        &url,
        Some("o-7:charge"),
        r#"{"order_id":"o-7","amount":700}"#,
    );
    assert_eq!((s, b["error"].as_str()), (503, Some("not_leader")), "{b}");
    assert!(
        b["message"]
            .as_str()
            .is_some_and(|m| m.contains("nothing was sent")),
        "{b}"
    );
    let ledger = c.admin_all(follower, "payment", "/admin/ledger");
    assert!(ledger.iter().all(|r| r["order_id"] != "o-7"), "{ledger:?}");
}

/// Proves the saga's "cancel shipment" compensation: a shipment cancelled twice under one key
/// (through two nodes) is one cancellation with replay count 1 and the shipment ends
/// `cancelled`; cancelling a shipment that was never created is a 422 that changes nothing; and
/// with `--no-idempotency` a repeated shipment request ships twice.
#[test]
fn cancel_shipment_twice_is_one_cancellation() {
    let cancel_twice = |c: &Cluster| -> Vec<u16> {
        let ship = format!("{}/ship", c.url("n1", "shipping"));
        let (s, b) = c.post_led(&ship, Some("o-5:ship"), r#"{"order_id":"o-5"}"#);
        assert_eq!(s, 201, "{b}");
        let body = r#"{"order_id":"o-5","shipment_key":"o-5:ship"}"#;
        ["n2", "n3"]
            .iter()
            .map(|n| {
                let url = format!("{}/cancel", c.url(n, "shipping"));
                let (s, b) = c.post_led(&url, Some("o-5:cancel-ship"), body);
                assert!(s == 200 || s == 201, "{s} {b}");
                if s == 200 {
                    assert_eq!(b["replayed"], true, "{b}");
                    assert_eq!(b["replays"], 1, "{b}");
                    assert_eq!(b["cancellation"]["shipment_key"], "o-5:ship", "{b}");
                }
                s
            })
            .collect()
    };
    let c = Spec::new(3, &["shipping"]).start();
    c.await_leader("shipping", None);
    assert_eq!(cancel_twice(&c), vec![201, 200]);
    let shipments = c.admin_all("n1", "shipping", "/admin/shipments");
    let o5: Vec<&Value> = shipments
        .iter()
        .filter(|r| r["order_id"] == "o-5")
        .collect();
    assert_eq!(o5.len(), 1, "{shipments:?}");
    assert_eq!(o5[0]["status"], "cancelled", "{shipments:?}");
    let url = format!("{}/cancel", c.url("n1", "shipping"));
    let (s, b) = c.post(
        &url,
        Some("o-6:cancel-ship"),
        r#"{"order_id":"o-6","shipment_key":"o-6:ship"}"#,
    );
    assert_eq!((s, b["error"].as_str()), (422, Some("no_shipment")), "{b}");
    assert_eq!(c.admin_all("n1", "shipping", "/admin/shipments"), shipments);

    // Without idempotency keys the same shipment request twice ships twice (the double effect
    // the keys prevent), and the saga's cancel, which finds a shipment by its key, finds none.
    let off = Spec::new(3, &["shipping"])
        .flag("shipping", "--no-idempotency")
        .start();
    off.await_leader("shipping", None);
    for n in ["n1", "n2"] {
        let ship = format!("{}/ship", off.url(n, "shipping"));
        let (s, b) = off.post_led(&ship, Some("o-5:ship"), r#"{"order_id":"o-5"}"#);
        assert_eq!(s, 201, "{b}");
    }
    let shipped = off.admin_all("n1", "shipping", "/admin/shipments");
    assert_eq!(
        shipped.iter().filter(|r| r["order_id"] == "o-5").count(),
        2,
        "{shipped:?}"
    );
}

/// Proves the idempotency test can fail: with `--no-idempotency` the same refund twice makes
/// two refund records.
#[test]
fn without_idempotency_a_refund_repeats() {
    let c = Spec::new(3, &["payment"])
        .flag("payment", "--no-idempotency")
        .start();
    assert_eq!(refund_twice(&c).len(), 2);
}

/// Charges o-1, then refunds it twice under one key via n2 and n3; returns the refund records.
fn refund_twice(c: &Cluster) -> Vec<Value> {
    let body = r#"{"order_id":"o-1","amount":500}"#;
    let send = |node: &str, path: &str, key: &str| {
        let url = format!("{}{path}", c.url(node, "payment"));
        for _ in 0..CLIENT_ATTEMPTS {
            let (s, b) = c.post(&url, Some(key), body);
            if s < 500 && s != 0 {
                return (s, b);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("{url}: no definite answer");
    };
    assert_eq!(send("n1", "/charge", "o-1:charge").0, 201);
    assert_eq!(send("n2", "/refund", "o-1:refund").0, 201);
    let (s, b) = send("n3", "/refund", "o-1:refund");
    assert!(s == 200 || s == 201, "{s} {b}");
    c.admin_all("n1", "payment", "/admin/ledger")
        .into_iter()
        .filter(|r| r["kind"] == "refund")
        .collect()
}
