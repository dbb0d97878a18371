//! Issue 3: the store replicas, the quorum client, leases and fencing, against real `pipeline
//! store` processes on loopback.

use std::time::Duration;

use pipeline::config::QuorumSpec;
use pipeline::lease::{campaign, release, Campaign};
use pipeline::quorum::floor::TokenFloor;
use pipeline::quorum::replicas::Replicas;
use pipeline::quorum::{Quorum, WriteOutcome};
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::cluster::{runtime, Cluster, Spec};

const TIMEOUT: Duration = Duration::from_secs(2);

fn quorum(c: &Cluster, replicas: Vec<(String, String)>, r: usize, w: usize) -> Quorum {
    let n = replicas.len();
    let all = Replicas::with_client(replicas, c.peers().builder(TIMEOUT));
    Quorum::new(
        &all,
        QuorumSpec {
            n,
            r,
            w,
            eventual: r + w <= n,
        },
        "order",
        "order",
        0,
    )
}

/// A quorum over the given replicas of `c` (by node index), reading all of them.
fn over(c: &Cluster, idx: &[usize]) -> Quorum {
    let all = c.store_replicas();
    let picked: Vec<_> = idx.iter().map(|i| all[*i].clone()).collect();
    let n = picked.len();
    quorum(c, picked, n, n)
}

fn value_of(q: &Quorum, key: &str) -> Option<Value> {
    runtime()
        .block_on(q.read_one(key))
        .expect("read")
        .map(|r| r.value)
}

/// Proves a write acknowledged by W=2 of 3 replicas is read back by every R=2 read, also after
/// a replica was SIGKILLed and restarted (its acknowledged write is on disk), and after a
/// replica missed writes while down (read repair brings it up to date).
#[test]
fn quorum_writes_survive_kill_and_missed_writes() {
    let c = Spec::new(3, &["store"]).start();
    let q = quorum(&c, c.store_replicas(), 2, 2);
    let rt = runtime();
    let out = rt.block_on(q.write(1, vec![("k1".into(), json!("v1"))]));
    assert!(matches!(out, WriteOutcome::Ok(_)), "{out:?}");
    for pair in [[0, 1], [0, 2], [1, 2]] {
        assert_eq!(
            value_of(&over(&c, &pair), "k1"),
            Some(json!("v1")),
            "R=2 over {pair:?}"
        );
    }

    // Every replica acked k1 above (all three answered); kill one and check it kept it.
    c.kill("n1", "store");
    c.restart("n1", "store");
    assert_eq!(
        value_of(&over(&c, &[0]), "k1"),
        Some(json!("v1")),
        "n1 kept k1 across SIGKILL"
    );

    // n3 misses k2 while down.
    c.kill("n3", "store");
    let out = rt.block_on(q.write(1, vec![("k2".into(), json!("v2"))]));
    assert!(
        matches!(out, WriteOutcome::Ok(_)),
        "W=2 with n3 down: {out:?}"
    );
    c.restart("n3", "store");
    assert_eq!(value_of(&over(&c, &[2]), "k2"), None, "n3 missed k2");
    for pair in [[0, 1], [0, 2], [1, 2]] {
        assert_eq!(
            value_of(&over(&c, &pair), "k2"),
            Some(json!("v2")),
            "R=2 over {pair:?}"
        );
    }
    assert_eq!(
        value_of(&over(&c, &[2]), "k2"),
        Some(json!("v2")),
        "read repair wrote k2 to n3"
    );
    assert!(!c.log_lines("store", "read repair installed").is_empty());
}

/// Proves two candidates racing for one domain (seeded delays, many rounds, with every replica
/// SIGKILLed and restarted half-way) never both lead under one token, and that the tokens of
/// successive leaders strictly increase, across restarts too.
#[test]
fn racing_candidates_never_share_a_token() {
    let c = Spec::new(3, &["store"]).start();
    let replicas = Replicas::with_client(c.store_replicas(), c.peers().builder(TIMEOUT));
    let rt = runtime();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(20240601);
    let ttl = Duration::from_secs(5);
    let mut tokens: Vec<u64> = Vec::new();
    let (mut lost, mut rounds_with_winner) = (0, 0);
    for round in 0..40 {
        if round == 20 {
            for n in ["n1", "n2", "n3"] {
                c.kill(n, "store");
            }
            for n in ["n1", "n2", "n3"] {
                c.restart(n, "store");
            }
        }
        let (da, db) = (rng.gen_range(0..4u64), rng.gen_range(0..4u64));
        let results = rt.block_on(async {
            let (ra, rb) = (replicas.clone(), replicas.clone());
            let a = tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(da)).await;
                campaign(&ra, "order", "cand-a", ttl, &TokenFloor::new()).await
            });
            let b = tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(db)).await;
                campaign(&rb, "order", "cand-b", ttl, &TokenFloor::new()).await
            });
            [
                ("cand-a", a.await.expect("a")),
                ("cand-b", b.await.expect("b")),
            ]
        });
        let winners: Vec<(&str, u64)> = results
            .iter()
            .filter_map(|(who, r)| match r {
                Campaign::Won { token, .. } => Some((*who, *token)),
                _ => None,
            })
            .collect();
        lost += results
            .iter()
            .filter(|(_, r)| matches!(r, Campaign::Lost { .. }))
            .count();
        assert!(
            winners.len() <= 1,
            "round {round}: two leaders at once: {results:?}"
        );
        if let Some((who, token)) = winners.first() {
            if let Some(last) = tokens.last() {
                assert!(token > last, "round {round}: token {token} after {last}");
            }
            tokens.push(*token);
            rounds_with_winner += 1;
            rt.block_on(release(&replicas, "order", who, *token));
        }
    }
    assert!(
        rounds_with_winner >= 20,
        "only {rounds_with_winner} rounds elected anyone"
    );
    let distinct: std::collections::HashSet<_> = tokens.iter().collect();
    assert_eq!(distinct.len(), tokens.len(), "a token repeated: {tokens:?}");
    eprintln!("{rounds_with_winner} leaders, {lost} lost races, tokens {tokens:?}");
}

/// The fencing scenario: A leads with token t and writes; its lease runs out; B acquires t+1
/// and writes; A, unaware, writes again under t. Returns (cluster, t, A's late outcome).
fn stale_writer(no_fencing: bool) -> (Cluster, u64, WriteOutcome) {
    let mut spec = Spec::new(3, &["store"]);
    if no_fencing {
        spec = spec.flag("store", "--no-fencing");
    }
    let c = spec.start();
    let replicas = Replicas::with_client(c.store_replicas(), c.peers().builder(TIMEOUT));
    let q = quorum(&c, c.store_replicas(), 2, 2);
    let rt = runtime();
    let short = Duration::from_millis(300);
    let Campaign::Won { token: t, .. } =
        rt.block_on(campaign(&replicas, "order", "a", short, &TokenFloor::new()))
    else {
        panic!("a should win an uncontested election");
    };
    let out = rt.block_on(q.write(t, vec![("k".into(), json!("from-t"))]));
    assert!(matches!(out, WriteOutcome::Ok(_)), "{out:?}");
    let mut b_token = None;
    assert!(c.wait_until(Duration::from_secs(10), || {
        if let Campaign::Won { token, .. } = rt.block_on(campaign(
            &replicas,
            "order",
            "b",
            Duration::from_secs(10),
            &TokenFloor::new(),
        )) {
            b_token = Some(token);
        }
        b_token.is_some()
    }));
    assert_eq!(b_token, Some(t + 1), "b takes over with the next token");
    let out = rt.block_on(q.write(t + 1, vec![("k".into(), json!("from-t+1"))]));
    assert!(matches!(out, WriteOutcome::Ok(_)), "{out:?}");
    let late = rt.block_on(q.write(
        t,
        vec![
            ("k".into(), json!("stale")),
            ("k-only-a".into(), json!("stale")),
        ],
    ));
    (c, t, late)
}

/// Proves a writer holding token t is fenced after another acquired t+1: every replica (all saw
/// t+1) refuses the whole two-key write, logs the rejection once with both tokens and the key
/// count, counts it once, and the value written under t+1 is intact.
#[test]
fn stale_token_is_fenced() {
    let (c, t, late) = stale_writer(false);
    assert!(
        matches!(late, WriteOutcome::Failed { fenced_by: Some(f), .. } if f == t + 1),
        "every replica refused the stale write: {late:?}"
    );
    // The write is decided once two replicas refused it: the third one's line may follow.
    let mut lines = Vec::new();
    c.wait_until(Duration::from_secs(10), || {
        lines = c.log_lines("store", "fencing rejected write");
        ["n1", "n2", "n3"]
            .iter()
            .all(|n| lines.iter().any(|(node, _)| node == n))
    });
    for n in ["n1", "n2", "n3"] {
        let mine: Vec<&Value> = lines
            .iter()
            .filter(|(node, _)| node == n)
            .map(|(_, f)| f)
            .collect();
        assert_eq!(mine.len(), 1, "{n}: one line for one stale write: {mine:?}");
        let f = mine[0];
        assert_eq!(
            (&f["domain"], &f["key"], &f["keys"]),
            (&json!("order"), &json!("k"), &json!(2)),
            "{n}: {f}"
        );
        assert_eq!(
            (&f["rejected_token"], &f["current_token"]),
            (&json!(t), &json!(t + 1)),
            "{n}: {f}"
        );
        let m = reqwest::blocking::get(format!("{}/metrics", c.url(n, "store")))
            .and_then(|r| r.text())
            .expect("metrics");
        assert!(
            m.contains("fencing_rejected_writes_total{domain=\"order\"} 1"),
            "{n}: one write rejected, counted once: {m}"
        );
        assert!(
            m.contains("fencing_rejected_writes_total{domain=\"payment\"} 0"),
            "{n}: every fenced domain's count is present: {m}"
        );
    }
    let q = quorum(&c, c.store_replicas(), 2, 2);
    assert_eq!(value_of(&q, "k"), Some(json!("from-t+1")));
    assert_eq!(
        value_of(&q, "k-only-a"),
        None,
        "nothing of the stale write landed"
    );
}

/// Proves the fencing test can fail: with `--no-fencing` the same stale write gets through
/// (acknowledged, readable where the new leader wrote nothing), logged once per replica as
/// stale and not also as an accepted write.
#[test]
fn without_fencing_the_stale_write_gets_through() {
    let (c, t, late) = stale_writer(true);
    assert!(matches!(late, WriteOutcome::Ok(_)), "{late:?}");
    let q = quorum(&c, c.store_replicas(), 2, 2);
    assert_eq!(value_of(&q, "k-only-a"), Some(json!("stale")));
    // A quorum write returns after two acknowledgements: the third replica's line may follow.
    let mut stale = Vec::new();
    c.wait_until(Duration::from_secs(10), || {
        stale = c.log_lines("store", "stale write accepted (fencing disabled)");
        ["n1", "n2", "n3"]
            .iter()
            .all(|n| stale.iter().any(|(node, _)| node == n))
    });
    for n in ["n1", "n2", "n3"] {
        let mine: Vec<&Value> = stale
            .iter()
            .filter(|(node, _)| node == n)
            .map(|(_, f)| f)
            .collect();
        assert_eq!(
            mine.len(),
            1,
            "{n}: one line for one stale write: {stale:?}"
        );
        assert_eq!(
            (
                &mine[0]["token"],
                &mine[0]["current_token"],
                &mine[0]["keys"]
            ),
            (&json!(t), &json!(t + 1), &json!(1)),
            "{n}: only k-only-a was stored (k holds a newer version): {stale:?}"
        );
    }
    let accepted_late = c
        .log_lines("store", "write accepted")
        .into_iter()
        .filter(|(_, f)| f["token"] == t && f["key"] == "k-only-a")
        .count();
    assert_eq!(
        accepted_late, 0,
        "the stale write is not also logged as accepted"
    );
    assert!(c.log_lines("store", "fencing rejected write").is_empty());
}

/// Proves bad input to a store replica (truncated body, unknown domain, negative token, empty
/// key, token 0 lease, unknown lease action) gets a 4xx JSON error and writes nothing.
#[test]
fn bad_store_input_changes_nothing() {
    let c = Spec::new(1, &["store"]).start();
    let base = c.url("n1", "store");
    let good = r#"{"token":1,"entries":[{"key":"k","value":1,"seq":1}]}"#;
    let cases = [
        (
            "/kv/order/write",
            &good[..good.len() - 9],
            400,
            "malformed_json",
        ),
        ("/kv/nope/write", good, 404, "unknown_domain"),
        (
            "/kv/order/write",
            r#"{"token":-1,"entries":[{"key":"k","value":1,"seq":1}]}"#,
            422,
            "invalid_body",
        ),
        (
            "/kv/order/write",
            r#"{"token":1,"entries":[{"key":"","value":1,"seq":1}]}"#,
            400,
            "bad_key",
        ),
        (
            "/kv/order/write",
            r#"{"token":1,"entries":[]}"#,
            400,
            "bad_batch",
        ),
        (
            "/lease/order/acquire",
            r#"{"holder":"x","token":0,"ttl_ms":100}"#,
            400,
            "bad_token",
        ),
        (
            "/lease/order/acquire",
            r#"{"holder":"x","token":-3,"ttl_ms":100}"#,
            422,
            "invalid_body",
        ),
        (
            "/lease/order/steal",
            r#"{"holder":"x","token":5,"ttl_ms":100}"#,
            404,
            "not_found",
        ),
        (
            "/lease/nope/acquire",
            r#"{"holder":"x","token":5,"ttl_ms":100}"#,
            404,
            "unknown_domain",
        ),
    ];
    for (path, body, status, code) in cases {
        let (s, b) = c.post(&format!("{base}{path}"), None, body);
        assert_eq!(
            (s, b["error"].as_str()),
            (status, Some(code)),
            "{path} {body}: {b}"
        );
    }
    for d in pipeline::store::wire::DOMAINS {
        let (_, page) = c.get(&format!("{base}/kv/{d}/scan"));
        assert_eq!(page["items"], json!([]), "{d}");
        assert_eq!(page["current_token"], 0, "{d}: {page}");
    }
    for d in ["order", "payment", "inventory"] {
        let (_, lease) = c.get(&format!("{base}/lease/{d}"));
        assert_eq!(lease["max_token"], 0, "{d}: {lease}");
    }
    assert!(c.log_lines("store", "write accepted").is_empty());
    assert!(c.log_lines("store", "lease granted").is_empty());
}
