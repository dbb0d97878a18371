//! Issue 16: order intake decoupled from the saga leader, on a local 3-node cluster of real
//! processes. Any order node accepts an order into its own intake partition (202) while the
//! order leader is stopped, consumer lag grows on the other nodes and a new leader drains it;
//! one idempotency key presented on two nodes makes one order; the counters the alerting rules
//! use are exported from the start at 0.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::{json, Value};

use crate::cluster::{Cluster, Spec};
use crate::pipeline::metrics;

const ROLES: &[&str] = &["inventory", "payment", "shipping", "order"];

fn body(i: usize) -> String {
    json!({"customer": format!("c{i}"), "items": [{"sku": "sku-1", "qty": 1}], "amount": 100 + i})
        .to_string()
}

/// The value of an unlabelled gauge or of the series with exactly `labels` in a metrics text.
fn sample(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines()
        .find(|l| {
            l.strip_prefix(name_and_labels)
                .is_some_and(|rest| rest.starts_with(' '))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn orders(c: &Cluster, node: &str) -> Vec<Value> {
    c.admin_all(node, "order", "/admin/orders")
}

fn terminal(o: &Value) -> bool {
    matches!(
        o["status"].as_str(),
        Some("completed" | "rejected" | "compensated")
    )
}

/// Orders placed while the order leader is stopped, on the other nodes.
const WHILE_STOPPED: usize = 12;

/// The largest `consumer_lag_records` the nodes `on` export now.
fn lag_on(c: &Cluster, on: &[String]) -> f64 {
    on.iter()
        .filter_map(|n| sample(&metrics(c, n, "order"), "consumer_lag_records"))
        .fold(0.0, f64::max)
}

/// Proves that while the order leader is stopped (SIGSTOP) every order placed on the other
/// nodes is accepted with 202 at once, the lag those nodes export grows to every order they
/// accepted (nothing consumes them) before any new leader, a new leader is elected that takes
/// them all in and ends their sagas, and the lag drains back to 0. The lease is 10 s so that
/// the orders and the lag's once-a-second export fit before the election even on a loaded
/// machine; the test polls for each state with a bound.
#[test]
fn orders_are_accepted_while_the_order_leader_is_stopped() {
    let c = Spec::new(3, ROLES)
        .settings(json!({"lease_ttl_ms": 10_000}))
        .start();
    let (old, _) = c.await_leader("order", None);
    let others: Vec<String> = c.nodes.iter().filter(|n| **n != old).cloned().collect();
    c.signal(&old, "order", Signal::SIGSTOP);
    for i in 0..WHILE_STOPPED {
        let node = &others[i % others.len()];
        let started = Instant::now();
        let (s, b) = c.post(
            &format!("{}/orders", c.url(node, "order")),
            Some(&format!("paused-{i}")),
            &body(i),
        );
        assert_eq!(s, 202, "{node}: {b}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{node} was slow"
        );
    }
    // The stopped node is never asked: a request to it waits for the client's timeout.
    let leader_among_others = || {
        others
            .iter()
            .find(|n| c.get(&format!("{}/admin/leader", c.url(n, "order"))).1["is_leader"] == true)
            .cloned()
    };
    let mut peak = 0.0f64;
    let mut new_leader = None;
    c.wait_until(Duration::from_secs(15), || {
        peak = peak.max(lag_on(&c, &others));
        new_leader = leader_among_others();
        peak >= WHILE_STOPPED as f64 || new_leader.is_some()
    });
    assert!(
        peak >= WHILE_STOPPED as f64,
        "consumer lag peaked at {peak} of {WHILE_STOPPED} unconsumed orders with a stopped \
         leader (new leader before it: {new_leader:?})"
    );
    let elected = c.wait_until(Duration::from_secs(30), || {
        new_leader = leader_among_others();
        new_leader.is_some()
    });
    assert!(elected, "no new order leader while {old} was stopped");
    let new = new_leader.expect("elected");
    let done = c.wait_until(Duration::from_secs(60), || {
        let all = orders(&c, &new);
        all.len() == WHILE_STOPPED && all.iter().all(terminal)
    });
    assert!(
        done,
        "not all {WHILE_STOPPED} orders ended: {:?}",
        orders(&c, &new)
    );
    let drained = c.wait_until(Duration::from_secs(10), || lag_on(&c, &others) == 0.0);
    assert!(drained, "{}", metrics(&c, &new, "order"));
    c.signal(&old, "order", Signal::SIGCONT);
}

/// Proves one idempotency key presented on two nodes, one after the other, makes one order
/// (the same id from both, one order in the admin read, a dedup count on the second node), and
/// the same key with another payload on a third node is refused with 422.
#[test]
fn one_key_on_two_nodes_makes_one_order() {
    let c = Spec::new(3, ROLES).start();
    c.await_leader("order", None);
    let place = |node: &str, b: &str| {
        c.post(
            &format!("{}/orders", c.url(node, "order")),
            Some("shared"),
            b,
        )
    };
    let (s1, a) = place("n1", &body(7));
    let (s2, b) = place("n2", &body(7));
    assert_eq!((s1, s2), (202, 202), "{a} {b}");
    assert_eq!(a["order_id"], b["order_id"]);
    let (s3, e) = place("n3", &body(8));
    assert_eq!(s3, 422, "{e}");
    assert_eq!(e["error"], "idempotency_key_reused");
    let done = c.wait_until(Duration::from_secs(30), || {
        let all = orders(&c, "n3");
        all.len() == 1 && all.iter().all(terminal)
    });
    assert!(done, "{:?}", orders(&c, "n3"));
    let (s4, again) = place("n3", &body(7));
    assert_eq!(s4, 202);
    assert_eq!(again["order_id"], a["order_id"]);
    assert!(
        terminal(&again),
        "answered with the order's status: {again}"
    );
    let m = metrics(&c, "n2", "order");
    let dedup = sample(
        &m,
        "duplicate_effects_total{kind=\"order\",outcome=\"deduplicated\"}",
    );
    assert_eq!(dedup, Some(1.0), "{m}");
    assert_eq!(orders(&c, "n1").len(), 1);
}

/// Proves every counter the alerting rules use is present from the start at 0 for each label
/// value the role can take: elections per domain (before any election: the store is gone),
/// fenced writes per fenced domain, budget exhaustion per downstream, duplicate effects per kind
/// and outcome.
#[test]
fn rule_counters_are_exported_at_zero_from_the_start() {
    let c = Spec::new(1, &["store", "inventory", "payment", "shipping", "order"]).start();
    let want: &[(&str, &[&str])] = &[
        (
            "store",
            &[
                "fencing_rejected_writes_total{domain=\"order\"}",
                "fencing_rejected_writes_total{domain=\"payment\"}",
                "fencing_rejected_writes_total{domain=\"inventory\"}",
            ],
        ),
        (
            "order",
            &[
                "retry_budget_exhausted_total{downstream=\"payment\"}",
                "retry_budget_exhausted_total{downstream=\"inventory\"}",
                "retry_budget_exhausted_total{downstream=\"shipping\"}",
                "duplicate_effects_total{kind=\"order\",outcome=\"deduplicated\"}",
            ],
        ),
        (
            "payment",
            &[
                "duplicate_effects_total{kind=\"charge\",outcome=\"deduplicated\"}",
                "duplicate_effects_total{kind=\"charge\",outcome=\"applied\"}",
                "duplicate_effects_total{kind=\"refund\",outcome=\"applied\"}",
            ],
        ),
        (
            "shipping",
            &[
                "duplicate_effects_total{kind=\"ship\",outcome=\"applied\"}",
                "duplicate_effects_total{kind=\"cancel\",outcome=\"deduplicated\"}",
            ],
        ),
        (
            "inventory",
            &[
                "duplicate_effects_total{kind=\"reserve\",outcome=\"applied\"}",
                "duplicate_effects_total{kind=\"release\",outcome=\"deduplicated\"}",
                "duplicate_effects_total{kind=\"commit\",outcome=\"deduplicated\"}",
            ],
        ),
    ];
    for (role, series) in want {
        let m = metrics(&c, "n1", role);
        for s in *series {
            assert_eq!(
                sample(&m, s),
                Some(0.0),
                "{role}: {s} missing or not 0:\n{m}"
            );
        }
        assert!(
            sample(&m, "process_start_time_seconds").is_some_and(|v| v > 1e9),
            "{role}: process_start_time_seconds"
        );
    }
    // Without a store no election can be won: a restarted elector shows its counter at 0.
    c.kill("n1", "store");
    for role in ["order", "payment", "inventory"] {
        c.kill("n1", role);
        c.restart("n1", role);
        let m = metrics(&c, "n1", role);
        let series = format!("leader_elections_total{{domain=\"{role}\"}}");
        assert_eq!(sample(&m, &series), Some(0.0), "{role}:\n{m}");
    }
}

/// Proves an order leader that stalls past its lease while no other order node can take over
/// (every order process stopped, the leader longest) renews the same term when it resumes and
/// keeps consuming: orders placed on it afterwards end. Before the fix its consumer loop ended
/// at the first instant the lapsed lease was seen unchecked, the elector renewed the same
/// token, no new term started, and every later order stayed `accepted` forever.
#[test]
fn a_leader_stalled_past_its_lease_keeps_consuming_its_term() {
    let c = Spec::new(3, ROLES)
        .settings(json!({"lease_ttl_ms": 1_000}))
        .start();
    let (old, token) = c.await_leader("order", None);
    let others: Vec<String> = c.nodes.iter().filter(|n| **n != old).cloned().collect();
    for n in &others {
        c.signal(n, "order", Signal::SIGSTOP);
    }
    c.signal(&old, "order", Signal::SIGSTOP);
    std::thread::sleep(Duration::from_millis(2_500));
    c.signal(&old, "order", Signal::SIGCONT);
    let url = c.url(&old, "order");
    let mut ids = Vec::new();
    for i in 0..3 {
        let (s, b) = c.post(
            &format!("{url}/orders"),
            Some(&format!("stall-{i}")),
            &body(i),
        );
        assert_eq!(s, 202, "{b}");
        ids.push(b["order_id"].as_str().expect("an order id").to_owned());
    }
    let done = c.wait_until(Duration::from_secs(30), || {
        let all = orders(&c, &old);
        ids.iter().all(|id| {
            all.iter()
                .any(|o| o["order_id"] == id.as_str() && terminal(o))
        })
    });
    let view = c.get(&format!("{url}/admin/leader")).1;
    for n in &others {
        c.signal(n, "order", Signal::SIGCONT);
    }
    assert!(
        done,
        "orders after the stall never ended: {:?}",
        orders(&c, &old)
    );
    assert_eq!(view["token"], token, "the same term, renewed: {view}");
}
