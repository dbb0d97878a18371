//! Inventory's two consistency models side by side: linearizable never oversells, eventual
//! can (the same partition scenario in both).

use std::time::Duration;

use serde_json::json;

use crate::cluster::{Cluster, Spec};

/// Attempts of one client request that got no definite answer.
const CLIENT_ATTEMPTS: usize = 60;

/// Sends reserves of one unit of `sku` under `keys` through the nodes in turn (retrying answers
/// that are not definite up to `attempts` times); returns (reserved, refused, undecided).
fn reserve_all(
    c: &Cluster,
    sku: &str,
    keys: &[String],
    nodes: &[&str],
    attempts: usize,
) -> (usize, usize, usize) {
    let (mut ok, mut refused, mut undecided) = (0, 0, 0);
    std::thread::scope(|s| {
        let handles: Vec<_> = keys
            .iter()
            .enumerate()
            .map(|(i, key)| {
                let node = nodes[i % nodes.len()];
                s.spawn(move || {
                    let url = format!("{}/reserve", c.url(node, "inventory"));
                    let body = json!({"sku": sku, "qty": 1}).to_string();
                    for _ in 0..attempts {
                        match c.post(&url, Some(key), &body) {
                            (200 | 201, _) => return 0,
                            (422, b) if b["error"] == "insufficient_stock" => return 1,
                            (s, b) if (400..500).contains(&s) && s != 409 => panic!("{s} {b}"),
                            _ => std::thread::sleep(Duration::from_millis(200)),
                        }
                    }
                    2
                })
            })
            .collect();
        for h in handles {
            match h.join().expect("client") {
                0 => ok += 1,
                1 => refused += 1,
                _ => undecided += 1,
            }
        }
    });
    (ok, refused, undecided)
}

fn reserved_units(c: &Cluster, node: &str, sku: &str) -> usize {
    c.admin_all(node, "inventory", "/admin/reservations")
        .iter()
        .filter(|r| r["sku"] == sku && r["status"] == "reserved")
        .count()
}

/// The partition scenario: 5 units; 5 reserves while n1's store replica is down, then 5 more
/// on n1 while only n1's replica is up; then every replica is up again.
fn partitioned_reserves(c: &Cluster) {
    let keys = |p: &str| (0..5).map(|i| format!("{p}-{i}")).collect::<Vec<_>>();
    c.kill("n1", "store");
    let (ok, _, _) = reserve_all(c, "sku-1", &keys("p1"), &["n2", "n3"], CLIENT_ATTEMPTS);
    assert_eq!(ok, 5, "a majority is up: all 5 reserve");
    c.kill("n2", "store");
    c.kill("n3", "store");
    c.restart("n1", "store");
    reserve_all(c, "sku-1", &keys("p2"), &["n1"], 1);
    for n in ["n2", "n3"] {
        c.restart(n, "store");
    }
}

/// Proves linearizable inventory never oversells: 9 concurrent reserves of 5 units across all
/// nodes give exactly 5 reservations and 4 definite refusals, stock ends at 0 on every node,
/// and a minority partition accepts nothing.
#[test]
fn linearizable_inventory_never_oversells() {
    let c = Spec::new(3, &["inventory"])
        .settings(json!({"initial_stock": {"sku-0": 5, "sku-1": 5}, "lease_ttl_ms": 1000}))
        .start();
    let keys: Vec<String> = (0..9).map(|i| format!("r-{i}")).collect();
    let (ok, refused, undecided) =
        reserve_all(&c, "sku-0", &keys, &["n1", "n2", "n3"], CLIENT_ATTEMPTS);
    assert_eq!((ok, refused, undecided), (5, 4, 0));
    for n in ["n1", "n2", "n3"] {
        let (_, s) = c.get(&format!("{}/stock/sku-0", c.url(n, "inventory")));
        assert_eq!(s["available"], 0, "{n}: {s}");
    }
    partitioned_reserves(&c);
    assert_eq!(
        reserved_units(&c, "n1", "sku-1"),
        5,
        "the minority side reserved nothing"
    );
}

/// Proves the inventory check can fail: in eventual mode the same partition scenario reserves
/// 10 units of a SKU that had 5 (both sides of the partition sold the stock).
#[test]
fn eventual_inventory_can_oversell() {
    let c = Spec::new(3, &["inventory"])
        .settings(json!({"initial_stock": {"sku-1": 5}, "inventory_mode": "eventual"}))
        .start();
    partitioned_reserves(&c);
    let mut seen = 0;
    let converged = c.wait_until(Duration::from_secs(10), || {
        seen = reserved_units(&c, "n1", "sku-1");
        seen == 10
    });
    assert!(converged, "{seen} units reserved of a SKU that had 5");
}
