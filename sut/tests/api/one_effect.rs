//! One key, one effect, across nodes: the same idempotency key with the same payload sent to
//! every node of a role at the same moment makes one effect and one record, for every effect
//! (charge, refund, reserve, release, commit, ship, cancel), counted where it is applied (the
//! `effect applied` log lines and `effects_applied_total` of every node), not only in the final
//! state; also with a CPU hog running, and while one node is paused or killed. With
//! `--no-idempotency` the same rounds make more effects than keys.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::Barrier;
use std::time::Duration;

use serde_json::{json, Value};

use crate::cluster::{Cluster, Spec};

/// Rounds per effect without a hog, and again with one.
const ROUNDS: usize = 100;
/// Rounds per effect with `--no-idempotency`.
const ROUNDS_OFF: usize = 10;
/// Attempts of one client until its answer is definite.
const ATTEMPTS: usize = 100;

/// Busy loops, one per core, killed on drop.
struct Hog(Vec<Child>);

impl Hog {
    fn start() -> Hog {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Hog((0..cores)
            .map(|_| {
                Command::new("sh")
                    .args(["-c", "while :; do :; done"])
                    .stdout(Stdio::null())
                    .spawn()
                    .expect("the hog starts")
            })
            .collect())
    }
}

impl Drop for Hog {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// An answer that settles the request: 2xx, or a 4xx other than 409 (in flight).
fn definite(status: u16) -> bool {
    (200..300).contains(&status) || ((400..500).contains(&status) && status != 409)
}

/// POSTs `body` under `key` to `path` of `role` on `node` until the answer is definite.
fn settle(
    c: &Cluster,
    node: &str,
    role: &str,
    path: &str,
    key: &str,
    body: &Value,
) -> (u16, Value) {
    let url = format!("{}{path}", c.url(node, role));
    let mut last = (0, Value::Null);
    for _ in 0..ATTEMPTS {
        last = c.post(&url, Some(key), &body.to_string());
        if definite(last.0) {
            return last;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{url} {key}: no definite answer, last {last:?}");
}

/// Sends the request to every node in `nodes` at the same moment (a barrier), each client
/// retrying until definite; the answers in node order.
fn at_once(
    c: &Cluster,
    nodes: &[String],
    role: &str,
    path: &str,
    key: &str,
    body: &Value,
) -> Vec<(u16, Value)> {
    at_once_with(c, nodes, role, path, key, body, || {})
}

/// [`at_once`], with `fault` run from the same moment on beside the clients.
fn at_once_with(
    c: &Cluster,
    nodes: &[String],
    role: &str,
    path: &str,
    key: &str,
    body: &Value,
    fault: impl FnOnce() + Send,
) -> Vec<(u16, Value)> {
    let barrier = Barrier::new(nodes.len() + 1);
    std::thread::scope(|s| {
        let b = &barrier;
        s.spawn(move || {
            b.wait();
            fault();
        });
        let hs: Vec<_> = nodes
            .iter()
            .map(|n| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    settle(c, n, role, path, key, body)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().expect("client")).collect()
    })
}

/// The (path, key, body) of a request to settle first.
type Prior = fn(&str) -> (&'static str, String, Value);

/// One effect: its path, label, the key and body of round `i`, and what must exist first.
#[derive(Clone, Copy)]
struct Effect {
    role: &'static str,
    path: &'static str,
    kind: &'static str,
    /// (key, body) of round `i` of run `run`.
    request: fn(&str) -> (String, Value),
    /// (path, key, body) to settle first, if the effect acts on another.
    before: Option<Prior>,
}

fn order_of(tag: &str) -> String {
    format!("o-{tag}")
}

const CHARGE: Effect = Effect {
    role: "payment",
    path: "/charge",
    kind: "charge",
    request: |t| {
        (
            format!("{}:charge", order_of(t)),
            json!({"order_id": order_of(t), "amount": 700}),
        )
    },
    before: None,
};
const REFUND: Effect = Effect {
    role: "payment",
    path: "/refund",
    kind: "refund",
    request: |t| {
        (
            format!("{}:refund", order_of(t)),
            json!({"order_id": order_of(t), "amount": 700}),
        )
    },
    before: Some(|t| {
        (
            "/charge",
            format!("{}:charge", order_of(t)),
            json!({"order_id": order_of(t), "amount": 700}),
        )
    }),
};
fn reserve_of(t: &str) -> (&'static str, String, Value) {
    (
        "/reserve",
        format!("{}:reserve:0", order_of(t)),
        json!({"sku": "sku-1", "qty": 2, "order_id": order_of(t)}),
    )
}
fn settle_body(t: &str) -> Value {
    json!({"sku": "sku-1", "qty": 2, "order_id": order_of(t), "reservation": format!("{}:reserve:0", order_of(t))})
}
const RESERVE: Effect = Effect {
    role: "inventory",
    path: "/reserve",
    kind: "reserve",
    request: |t| {
        let (_, k, b) = reserve_of(t);
        (k, b)
    },
    before: None,
};
const RELEASE: Effect = Effect {
    role: "inventory",
    path: "/release",
    kind: "release",
    request: |t| (format!("{}:release:0", order_of(t)), settle_body(t)),
    before: Some(reserve_of),
};
const COMMIT: Effect = Effect {
    role: "inventory",
    path: "/commit",
    kind: "commit",
    request: |t| (format!("{}:commit:0", order_of(t)), settle_body(t)),
    before: Some(reserve_of),
};
const SHIP: Effect = Effect {
    role: "shipping",
    path: "/ship",
    kind: "ship",
    request: |t| {
        (
            format!("{}:ship", order_of(t)),
            json!({"order_id": order_of(t)}),
        )
    },
    before: None,
};
const CANCEL: Effect = Effect {
    role: "shipping",
    path: "/cancel",
    kind: "cancel",
    request: |t| {
        (
            format!("{}:cancel-ship", order_of(t)),
            json!({"order_id": order_of(t), "shipment_key": format!("{}:ship", order_of(t))}),
        )
    },
    before: Some(|t| {
        (
            "/ship",
            format!("{}:ship", order_of(t)),
            json!({"order_id": order_of(t)}),
        )
    }),
};

/// A cluster of `role`; slow enough timeouts for a hogged machine, stock that never runs out.
fn cluster(role: &'static str, idempotency: bool) -> Cluster {
    let mut spec = Spec::new(3, &[role]).settings(json!({
        "store_timeout_ms": 5000, "call_timeout_ms": 8000, "lease_ttl_ms": 4000,
        "initial_stock": {"sku-1": 1_000_000},
    }));
    if !idempotency {
        spec = spec.flag(role, "--no-idempotency");
    }
    let c = spec.start();
    c.await_leader(role, None);
    c
}

/// Runs `rounds` rounds of `e` (tagged `tag-<i>`) with every node receiving the key at once;
/// returns the keys sent and the answers of each round.
fn rounds(c: &Cluster, e: Effect, tag: &str, rounds: usize) -> Vec<(String, Vec<(u16, Value)>)> {
    (0..rounds)
        .map(|i| {
            let t = format!("{tag}-{i}");
            if let Some(before) = e.before {
                let (path, key, body) = before(&t);
                let (s, b) = settle(c, "n1", e.role, path, &key, &body);
                assert!(s < 300, "{path} {key}: {s} {b}");
            }
            let (key, body) = (e.request)(&t);
            let answers = at_once(c, &c.nodes, e.role, e.path, &key, &body);
            (key, answers)
        })
        .collect()
}

/// `effect applied` lines per key of `kind`, over every node's log of `role`.
fn applied(c: &Cluster, role: &str, kind: &str) -> BTreeMap<String, usize> {
    let mut per_key = BTreeMap::new();
    for (_, f) in c.log_lines(role, "effect applied") {
        if f["kind"] == kind {
            *per_key
                .entry(f["key"].as_str().unwrap_or_default().to_owned())
                .or_insert(0) += 1;
        }
    }
    per_key
}

/// `effects_applied_total{kind}` summed over the nodes.
fn applied_total(c: &Cluster, role: &str, kind: &str) -> f64 {
    let prefix = format!("effects_applied_total{{kind=\"{kind}\"}} ");
    c.nodes
        .iter()
        .map(|n| {
            crate::pipeline::metrics(c, n, role)
                .lines()
                .find_map(|l| {
                    l.strip_prefix(prefix.as_str())
                        .and_then(|v| v.trim().parse::<f64>().ok())
                })
                .unwrap_or(0.0)
        })
        .sum()
}

/// Final-state records made under `key` for effect `e` (for a commit or cancel: the record it
/// changed, in its new state).
fn records(c: &Cluster, e: Effect, key: &str, t: &str) -> usize {
    let of = |path: &str| c.admin_all("n2", e.role, path);
    match e.kind {
        "charge" | "refund" => of("/admin/ledger")
            .iter()
            .filter(|r| r["key"] == key)
            .count(),
        "reserve" => of("/admin/reservations")
            .iter()
            .filter(|r| r["key"] == key)
            .count(),
        "release" => of("/admin/releases")
            .iter()
            .filter(|r| r["key"] == key)
            .count(),
        "commit" => of("/admin/reservations")
            .iter()
            .filter(|r| r["order_id"] == order_of(t).as_str() && r["status"] == "committed")
            .count(),
        "ship" => of("/admin/shipments")
            .iter()
            .filter(|r| r["key"] == key)
            .count(),
        _ => of("/admin/shipments")
            .iter()
            .filter(|r| r["order_id"] == order_of(t).as_str() && r["status"] == "cancelled")
            .count(),
    }
}

/// Runs [`ROUNDS`] rounds of each effect, then as many with a CPU hog, and asserts one effect
/// per key at every level: one 201 and replays for the rest, one `effect applied` line across
/// the nodes, the counters' sum, and one record in the final state.
fn once_per_key(role: &'static str, effects: &[Effect]) {
    let c = cluster(role, true);
    let mut expected: BTreeMap<&str, usize> = BTreeMap::new();
    for e in effects {
        for (phase, hog) in [("plain", None), ("hog", Some(()))] {
            let _hog = hog.map(|_| Hog::start());
            let tag = format!("{}-{phase}", e.kind);
            let sent = rounds(&c, *e, &tag, ROUNDS);
            for (key, answers) in &sent {
                // One client got the effect's 201, the others its replay (a client whose 201
                // was lost to a timeout gets the replay on its retry).
                let created = answers.iter().filter(|(s, _)| *s == 201).count();
                let replayed = answers
                    .iter()
                    .filter(|(s, b)| *s == 200 && b["replayed"] == true)
                    .count();
                assert!(
                    created <= 1 && created + replayed == 3,
                    "{key}: {answers:?}"
                );
            }
            drop(_hog);
            let lines = applied(&c, role, e.kind);
            for (i, (key, _)) in sent.iter().enumerate() {
                assert_eq!(lines.get(key), Some(&1), "{key}: effect applied lines");
                if i % 10 == 0 {
                    assert_eq!(
                        records(&c, *e, key, &format!("{tag}-{i}")),
                        1,
                        "{key}: records"
                    );
                }
            }
            *expected.entry(e.kind).or_default() += ROUNDS;
            if let Some(b) = e.before {
                let (path, _, _) = b("x");
                *expected.entry(&path[1..]).or_default() += ROUNDS;
            }
        }
    }
    for (kind, n) in expected {
        assert_eq!(
            applied_total(&c, role, kind),
            n as f64,
            "effects_applied_total{{kind={kind}}}"
        );
    }
    assert!(
        c.log_lines(role, "effect outcome unknown").is_empty(),
        "no write ended unknown"
    );
}

/// Proves one key, one effect for charges and refunds: 2 x 100 rounds each (the second 100
/// under a CPU hog), the key at every payment node at once.
#[test]
fn payment_effects_once_per_key() {
    once_per_key("payment", &[CHARGE, REFUND]);
}

/// Proves one key, one effect for reserves, releases and commits: 2 x 100 rounds each (the
/// second 100 under a CPU hog), the key at every inventory node at once.
#[test]
fn inventory_effects_once_per_key() {
    once_per_key("inventory", &[RESERVE, RELEASE, COMMIT]);
}

/// Proves one key, one effect for shipments and cancellations: 2 x 100 rounds each (the
/// second 100 under a CPU hog), the key at every shipping node at once. (Before the shipping
/// leader, two shipping nodes both created a shipment for one key.)
#[test]
fn shipping_effects_once_per_key() {
    once_per_key("shipping", &[SHIP, CANCEL]);
}

/// Proves the once-per-key tests can fail: with `--no-idempotency` the same rounds make more
/// `effect applied` lines than keys, for every effect.
#[test]
fn without_idempotency_keys_make_more_effects() {
    for (role, effects) in [
        ("payment", vec![CHARGE, REFUND]),
        ("inventory", vec![RESERVE, RELEASE, COMMIT]),
        ("shipping", vec![SHIP, CANCEL]),
    ] {
        let c = cluster(role, false);
        for e in effects {
            let sent = rounds(&c, e, &format!("{}-off", e.kind), ROUNDS_OFF);
            let lines = applied(&c, role, e.kind);
            let effects: usize = sent
                .iter()
                .map(|(k, _)| lines.get(k).copied().unwrap_or(0))
                .sum();
            eprintln!(
                "--no-idempotency: {} {} keys made {effects} effects",
                sent.len(),
                e.kind
            );
            assert!(
                effects > sent.len(),
                "{}: {effects} effects for {} keys",
                e.kind,
                sent.len()
            );
        }
    }
}

/// Proves one key, one effect keeps holding while one node of the role is paused (SIGSTOP) or
/// killed (SIGKILL), the leader or not: the key goes to every node at once, the node is stopped
/// a few milliseconds later (maybe mid-effect) and brought back after 3 s, every client settles
/// its request (the stopped node's too, once it is back), and the key made one record (and one
/// `effect applied` line; a process killed between the two may never write its line).
#[test]
fn once_per_key_while_a_node_is_paused_or_killed() {
    use nix::sys::signal::Signal;
    for (role, e) in [
        ("payment", CHARGE),
        ("inventory", RESERVE),
        ("shipping", SHIP),
    ] {
        let c = cluster(role, true);
        let faults = [
            ("pause", true),
            ("pause", false),
            ("kill", true),
            ("kill", false),
        ];
        for (round, (fault, on_leader)) in faults.into_iter().enumerate() {
            let (leader, _) = c.await_leader(role, None);
            let target = if on_leader {
                leader.clone()
            } else {
                c.nodes
                    .iter()
                    .find(|n| **n != leader)
                    .expect("a follower")
                    .clone()
            };
            let t = format!("{fault}-{round}");
            let (key, body) = (e.request)(&t);
            let answers = at_once_with(&c, &c.nodes, role, e.path, &key, &body, || {
                std::thread::sleep(Duration::from_millis(3 * round as u64));
                match fault {
                    "pause" => c.signal(&target, role, Signal::SIGSTOP),
                    _ => c.kill(&target, role),
                }
                std::thread::sleep(Duration::from_secs(3));
                match fault {
                    "pause" => c.signal(&target, role, Signal::SIGCONT),
                    _ => c.restart(&target, role),
                }
            });
            assert!(answers.iter().all(|(s, _)| *s < 300), "{key}: {answers:?}");
            let lines = applied(&c, role, e.kind);
            let logged = lines.get(&key).copied().unwrap_or(0);
            // A SIGKILL can land between the effect's durable record and its log line (the
            // line is written after the record): after a kill the ledger is the truth, and at
            // most one line may tell of it.
            let want = if fault == "kill" { 0..=1 } else { 1..=1 };
            assert!(
                want.contains(&logged),
                "{key} ({fault} of {target}, leader {leader}): {logged} applied lines"
            );
            assert_eq!(records(&c, e, &key, &t), 1, "{key}: records");
        }
    }
}
