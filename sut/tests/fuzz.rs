//! Property-based fuzzing (proptest, fixed case counts and seeds, no nightly toolchain) over
//! every HTTP route of every role, against one cluster of real `pipeline` processes on
//! loopback: bodies, headers, idempotency keys of odd lengths and bytes, huge numbers, path
//! segments, queries, methods. `malformed` holds the input that must change nothing, checked
//! against the admin and store reads before and after; `wellformed` the input that must get the
//! contract's answer. Every request goes on a fresh connection, byte by byte (`requests`).

#[path = "api/cluster.rs"]
mod cluster;
#[path = "hostile/raw.rs"]
mod raw;
#[path = "hostile/state.rs"]
mod state;

#[path = "fuzz/malformed.rs"]
mod malformed;
#[path = "fuzz/requests.rs"]
mod requests;
#[path = "fuzz/shapes.rs"]
mod shapes;
#[path = "fuzz/wellformed.rs"]
mod wellformed;

use std::time::Duration;

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};

use crate::cluster::{Auth, Cluster, Spec};

const ROLES: &[&str] = &["store", "order", "payment", "inventory", "shipping"];

/// The cluster under fuzz and its secret.
pub struct Fuzz {
    c: Cluster,
    secret: String,
}

impl Fuzz {
    /// Runs `test` on `cases` values of `strategy`, from a fixed seed; a failure (after at
    /// most 32 shrinking steps) fails the test with the smallest input found.
    fn run<S: Strategy>(
        &self,
        cases: u32,
        seed: u8,
        strategy: &S,
        test: impl Fn(S::Value) -> Result<(), TestCaseError>,
    ) {
        let config = Config {
            cases,
            failure_persistence: None,
            max_shrink_iters: 32,
            ..Config::default()
        };
        let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[seed; 32]);
        let mut runner = TestRunner::new_with_rng(config, rng);
        if let Err(e) = runner.run(strategy, test) {
            panic!("property {seed}: {e}");
        }
    }
}

/// Places one order through the open API and waits until it completes, so that every role
/// holds state before the fuzzing starts.
fn settled_order(c: &Cluster) {
    let base = c.url("n1", "order");
    let body = r#"{"customer":"c","items":[{"sku":"sku-2","qty":1}],"amount":300}"#;
    let mut id = None;
    let placed = c.wait_until(Duration::from_secs(30), || {
        let (s, b) = c.post_as(
            &format!("{base}/orders"),
            Some("fuzz-seed"),
            body,
            Auth::Missing,
        );
        id = b["order_id"].as_str().map(str::to_owned);
        s == 202
    });
    let id = id.filter(|_| placed).expect("the first order was accepted");
    let done = c.wait_until(Duration::from_secs(30), || {
        c.get(&format!("{base}/orders/{id}")).1["status"] == "completed"
    });
    assert!(done, "the first order did not complete");
}

/// Proves, over every route of every role: malformed input (bodies broken in every way, bad
/// headers and keys, bad queries, unknown routes, domains and actions, wrong methods) gets a
/// 4xx JSON `{error, message}` and changes nothing the admin and store reads show; reads of
/// any path segment and cursor get their contract's answer; well-formed input, huge numbers
/// included, gets the contract's answer; no role answers 5xx, panics or stops, and every
/// order placed ends terminal.
#[test]
fn every_route_of_every_role() {
    let c = Spec::new(1, &["inventory", "payment", "shipping", "order"]).start();
    c.await_leader("order", None);
    c.await_leader("payment", None);
    c.await_leader("inventory", None);
    settled_order(&c);
    let f = Fuzz {
        secret: c.secret(),
        c,
    };
    let before = state::snapshot(&f.c);
    malformed::posts(&f);
    malformed::queries(&f);
    malformed::unknown(&f);
    malformed::path_reads(&f);
    malformed::page_reads(&f);
    assert_eq!(
        state::snapshot(&f.c),
        before,
        "malformed input or a read changed something"
    );

    let orders = wellformed::orders(&f);
    wellformed::payments(&f);
    wellformed::stock(&f);
    wellformed::shipping(&f);
    wellformed::store(&f);
    assert_ne!(
        state::snapshot(&f.c),
        before,
        "the reads compared above do show the effects of well-formed input"
    );
    let base = f.c.url("n1", "order");
    let terminal = f.c.wait_until(Duration::from_secs(90), || {
        orders.iter().all(|id| {
            let status = f.c.get(&format!("{base}/orders/{id}")).1["status"].clone();
            ["completed", "rejected", "compensated"]
                .iter()
                .any(|s| status == *s)
        })
    });
    assert!(terminal, "a fuzzed order did not end terminal");
    let sent = requests::SENT.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!(
        "fuzzing sent {sent} requests; {} orders ended terminal",
        orders.len()
    );
    for role in ROLES {
        let r = raw::get(&f.c.url("n1", role), "/health", None);
        assert_eq!(r.status, 200, "{role} after the fuzzing: {r:?}");
        assert!(!f.c.log("n1", role).contains("panicked"), "{role} panicked");
    }
}
