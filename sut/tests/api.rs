//! HTTP tests of the pipeline roles, each against a real `pipeline` process on loopback.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// A role process that is killed when the test ends.
struct Role {
    child: Child,
    base: String,
}

impl Drop for Role {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn start(role: &str, data: &Path, extra: &[String]) -> Role {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_pipeline"))
        .arg(role)
        .args(["--node", "n1", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(data)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("pipeline starts");
    let base = format!("http://127.0.0.1:{port}");
    let role = Role { child, base };
    let end = Instant::now() + Duration::from_secs(20);
    while Instant::now() < end {
        if health_ok(&format!("{}/health", role.base)) {
            return role;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{role_name} did not become healthy", role_name = role.base);
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn health_ok(url: &str) -> bool {
    rt().block_on(async {
        reqwest::get(url)
            .await
            .map(|r| r.status().is_success())
            .unwrap_or(false)
    })
}

fn post(base: &str, path: &str, key: Option<&str>, body: &str) -> (u16, Value) {
    rt().block_on(async {
        let mut req = reqwest::Client::new()
            .post(format!("{base}{path}"))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(k) = key {
            req = req.header("idempotency-key", k);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    })
}

fn get(base: &str, path: &str) -> (u16, Value) {
    rt().block_on(async {
        let resp = reqwest::get(format!("{base}{path}"))
            .await
            .expect("request");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    })
}

fn ledger(base: &str) -> Vec<Value> {
    get(base, "/admin/ledger").1["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Proves a charge repeated under one key makes one record with replay count 1, that a reused key
/// with another payload gets 422, and that a refund needs a matching charge.
#[test]
fn charge_is_idempotent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pay = start("payment", dir.path(), &[]);
    let body = r#"{"order_id":"o-1","amount":500}"#;
    let (s1, b1) = post(&pay.base, "/charge", Some("o-1:charge"), body);
    assert_eq!(s1, 201, "{b1}");
    let (s2, b2) = post(&pay.base, "/charge", Some("o-1:charge"), body);
    assert_eq!(s2, 200, "{b2}");
    assert_eq!(b2["replayed"], json!(true));
    let recs = ledger(&pay.base);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0]["replays"], json!(1));
    let (s3, b3) = post(
        &pay.base,
        "/charge",
        Some("o-1:charge"),
        r#"{"order_id":"o-1","amount":501}"#,
    );
    assert_eq!(
        (s3, b3["error"].as_str()),
        (422, Some("idempotency_key_reused"))
    );
    let (s4, b4) = post(
        &pay.base,
        "/refund",
        Some("o-2:refund"),
        r#"{"order_id":"o-2","amount":5}"#,
    );
    assert_eq!(
        (s4, b4["error"].as_str()),
        (422, Some("no_matching_charge"))
    );
    let (s5, _) = post(&pay.base, "/refund", Some("o-1:refund"), body);
    assert_eq!(s5, 201);
    assert_eq!(ledger(&pay.base).len(), 2);
    let metrics = rt().block_on(async {
        reqwest::get(format!("{}/metrics", pay.base))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text")
    });
    assert!(metrics.contains("duplicate_effects_total"), "{metrics}");
}

/// Proves the idempotency check can fail: with `--no-idempotency` the same charge twice makes two
/// records.
#[test]
fn without_idempotency_a_repeat_charges_twice() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pay = start("payment", dir.path(), &["--no-idempotency".into()]);
    let body = r#"{"order_id":"o-1","amount":500}"#;
    assert_eq!(post(&pay.base, "/charge", Some("o-1:charge"), body).0, 201);
    assert_eq!(post(&pay.base, "/charge", Some("o-1:charge"), body).0, 201);
    assert_eq!(ledger(&pay.base).len(), 2);
}

/// Proves bad input gets a 4xx JSON error and changes nothing.
#[test]
fn bad_input_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pay = start("payment", dir.path(), &[]);
    let cases = [
        (
            None,
            r#"{"order_id":"o-1","amount":500}"#,
            400,
            "missing_idempotency_key",
        ),
        (
            Some("k"),
            r#"{"order_id":"o-1","amount":-5}"#,
            400,
            "bad_amount",
        ),
        (
            Some("k"),
            r#"{"order_id":"o-1","amou"#,
            400,
            "malformed_json",
        ),
        (
            Some("k"),
            r#"{"order_id":"","amount":5}"#,
            400,
            "bad_order_id",
        ),
        (
            Some("k"),
            r#"{"order_id":"o","amount":5,"extra":1}"#,
            422,
            "invalid_body",
        ),
    ];
    for (key, body, status, code) in cases {
        let (s, b) = post(&pay.base, "/charge", key, body);
        assert_eq!(
            (s, b["error"].as_str()),
            (status, Some(code)),
            "{body}: {b}"
        );
    }
    assert!(ledger(&pay.base).is_empty());

    let order_dir = tempfile::tempdir().expect("tempdir");
    let order = start(
        "order",
        order_dir.path(),
        &["--payment".into(), pay.base.clone()],
    );
    let cases = [
        (
            None,
            r#"{"customer":"c","items":[{"sku":"a","qty":1}],"amount":5}"#,
            400,
        ),
        (
            Some("k1"),
            r#"{"customer":"c","items":[{"sku":"a","qty":-1}],"amount":5}"#,
            400,
        ),
        (Some("k1"), r#"{"customer":"c","items":[],"amount":5}"#, 400),
        (
            Some("k1"),
            r#"{"customer":"c","items":[{"sku":"a","qty":1}],"amount":0}"#,
            400,
        ),
        (Some("k1"), r#"not json"#, 400),
    ];
    for (key, body, status) in cases {
        let (s, b) = post(&order.base, "/orders", key, body);
        assert_eq!(s, status, "{body}: {b}");
        assert!(b["error"].is_string(), "{b}");
    }
    assert_eq!(get(&order.base, "/orders/o-nope").0, 404);
    assert_eq!(get(&order.base, "/admin/orders").1["items"], json!([]));
}

/// Proves an order is accepted once per key, charged exactly once through payment, and a reused
/// key with another payload is refused.
#[test]
fn order_is_charged_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pay = start("payment", &dir.path().join("pay"), &[]);
    let order = start(
        "order",
        &dir.path().join("order"),
        &["--payment".into(), pay.base.clone()],
    );
    let body = r#"{"customer":"c","items":[{"sku":"a","qty":2}],"amount":1234}"#;
    let (s, b) = post(&order.base, "/orders", Some("client-key-1"), body);
    assert_eq!(s, 202, "{b}");
    let id = b["order_id"].as_str().expect("id").to_owned();
    let (s2, b2) = post(&order.base, "/orders", Some("client-key-1"), body);
    assert_eq!((s2, b2["order_id"].as_str()), (202, Some(id.as_str())));
    let other = r#"{"customer":"c","items":[{"sku":"a","qty":3}],"amount":1234}"#;
    assert_eq!(
        post(&order.base, "/orders", Some("client-key-1"), other).0,
        422
    );
    let end = Instant::now() + Duration::from_secs(10);
    let mut status = String::new();
    while Instant::now() < end {
        status = get(&order.base, &format!("/orders/{id}")).1["status"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        if status == "completed" {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(status, "completed");
    let recs = ledger(&pay.base);
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!(recs[0]["amount"], json!(1234));
    assert_eq!(recs[0]["order_id"], json!(id));
}
