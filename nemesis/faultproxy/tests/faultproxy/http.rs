//! The `http` toxic on real HTTP/1.1 traffic: it acts on the matching exchanges only, whatever
//! connection they use, and everything else on the link passes byte for byte.

use std::time::{Duration, Instant};

use faultproxy::api::{HttpAction, HttpToxic, Stream, Toxic, ToxicKind};
use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::{self, Backend, WAIT};

fn http_toxic(name: &str, h: HttpToxic) -> Toxic {
    Toxic::new(ToxicKind::Http(h), Stream::Downstream).named(name)
}

fn on(method: &str, path: &str, action: HttpAction) -> HttpToxic {
    HttpToxic {
        method: Some(method.into()),
        path: path.into(),
        action,
        ..HttpToxic::default()
    }
}

/// Polls `f` until it holds, for at most [`WAIT`].
async fn eventually(what: &str, f: impl Fn() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < WAIT, "{what} did not happen within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One exchange on an open connection: sends `req`, reads one response framed by its
/// Content-Length; `None` when nothing arrives within `wait`.
async fn exchange(s: &mut TcpStream, req: &[u8], wait: Duration) -> Option<Vec<u8>> {
    s.write_all(req).await.expect("write");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(wait, async {
        loop {
            if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse().expect("length"));
                if got.len() >= end + 4 + len {
                    return;
                }
            }
            let n = s.read(&mut buf).await.expect("read");
            assert!(
                n > 0,
                "closed mid-response: {:?}",
                String::from_utf8_lossy(&got)
            );
            got.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .ok()
    .map(|()| got)
}

fn post(path: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nhost: payment\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Proves the issue's case: on one link, only `POST /refund` replies are dropped while
/// `POST /charge` replies pass, counted on both sides (the server saw every refund and charge;
/// the client got no refund reply, each a timeout, and every charge reply); then the API lists
/// the toxic, updates it (PATCH to answer 503 without forwarding) and removes it.
#[tokio::test]
async fn only_refund_replies_are_dropped() {
    const REFUNDS: u64 = 4;
    const CHARGES: u64 = 6;
    let (server, api) = support::faultproxy().await;
    let backend = Backend::start().await;
    let listen = api.proxy("payment", backend.addr).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .expect("client");
    let call = |path: &'static str| {
        let client = client.clone();
        let url = format!("http://{listen}{path}");
        async move { client.post(url).body(r#"{"amount":5}"#).send().await }
    };
    // A warm keep-alive connection, opened before the toxic exists.
    assert!(call("/charge").await.expect("charge").status().is_success());
    let toxic = http_toxic(
        "lost-refunds",
        on("POST", "/refund", HttpAction::DropResponse),
    );
    let created = api.add("payment", &toxic).await;
    assert_eq!(created, toxic);
    let mut plan = Vec::new();
    for _ in 0..REFUNDS {
        plan.extend(["/refund", "/charge"]);
    }
    plan.push("/charge");
    let (mut refund_replies, mut refund_timeouts, mut charge_replies) = (0, 0, 1);
    for path in plan {
        match (path, call(path).await) {
            ("/refund", Ok(_)) => refund_replies += 1,
            ("/refund", Err(e)) => {
                assert!(e.is_timeout(), "a lost reply looks like a timeout: {e}");
                refund_timeouts += 1;
            }
            (_, Ok(r)) => {
                let body: serde_json::Value = r.json().await.expect("json");
                assert_eq!(body["ok"], "POST /charge");
                charge_replies += 1;
            }
            (_, Err(e)) => panic!("a charge failed: {e}"),
        }
    }
    eventually("the server saw every refund", || {
        backend.count("POST /refund") == REFUNDS
    })
    .await;
    assert_eq!(
        (backend.count("POST /charge"), charge_replies),
        (CHARGES, CHARGES)
    );
    assert_eq!((refund_replies, refund_timeouts), (0, REFUNDS));

    let listed = api.call(Method::GET, "/proxies/payment/toxics", None).await;
    assert_eq!(
        listed.json,
        json!([{"name": "lost-refunds", "type": "http", "stream": "downstream", "toxicity": 1.0,
                "attributes": {"method": "POST", "path": "/refund", "action": "drop_response",
                               "delay_ms": 0, "status": 503, "nth": 1, "every": 1, "limit": 0}}])
    );
    let a = api
        .update(
            "payment",
            "lost-refunds",
            json!({"attributes": {"action": "status", "status": 503}}),
        )
        .await;
    assert_eq!(
        (a.status, a.json["attributes"]["action"].clone()),
        (StatusCode::OK, json!("status"))
    );
    let r = call("/refund").await.expect("answered by the proxy");
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = r.json().await.expect("json body");
    assert_eq!(body["error"], "injected");
    assert_eq!(backend.count("POST /refund"), REFUNDS, "not forwarded");
    api.remove("payment", "lost-refunds").await;
    assert!(call("/refund")
        .await
        .expect("refund passes")
        .status()
        .is_success());
    assert_eq!(backend.count("POST /refund"), REFUNDS + 1);
    server.shutdown().await;
}

/// A server for one connection: reads exactly `expect` bytes, then sends `replies` (with pauses
/// and a split in the middle, to cross reads), and keeps the connection open.
async fn scripted(
    expect: Vec<u8>,
    replies: Vec<Vec<u8>>,
) -> (std::net::SocketAddr, tokio::task::JoinHandle<Vec<u8>>) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let (mut s, _) = l.accept().await.expect("accept");
        let mut got = vec![0u8; expect.len()];
        s.read_exact(&mut got).await.expect("requests");
        for r in replies {
            let (a, b) = r.split_at(r.len() / 2);
            s.write_all(a).await.expect("reply");
            tokio::time::sleep(Duration::from_millis(30)).await;
            s.write_all(b).await.expect("reply");
        }
        let mut more = [0u8; 1];
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read(&mut more)).await;
        got
    });
    (addr, task)
}

/// Proves on one keep-alive connection with pipelined requests (Content-Length and chunked
/// bodies) that a `status` toxic answers only `POST /refund`, in its place in the response order,
/// while the other requests reach the server byte for byte and their responses (Content-Length
/// and chunked) reach the client byte for byte.
#[tokio::test]
async fn other_exchanges_pass_byte_for_byte() {
    let charge1 = post("/charge", r#"{"order":1}"#);
    let refund = post("/refund", r#"{"order":1}"#);
    let charge2 = b"POST /charge HTTP/1.1\r\nhost: payment\r\ntransfer-encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n3;x=y\r\n12}\r\n0\r\nx-trailer: t\r\n\r\n".to_vec();
    let charge3 = post("/charge?retry=1", r#"{"order":3}"#);
    let r1 = b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\nx-n: 1\r\n\r\n{\"n\":\"one\"}".to_vec();
    let r2 = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n4\r\n{\"n\"\r\n7\r\n:\"two\"}\r\n0\r\n\r\n".to_vec();
    let r3 = b"HTTP/1.1 201 Created\r\ncontent-length: 13\r\n\r\n{\"n\":\"three\"}".to_vec();
    let forwarded = [charge1.clone(), charge2.clone(), charge3.clone()].concat();
    let (up, task) = scripted(forwarded.clone(), vec![r1.clone(), r2.clone(), r3.clone()]).await;
    let (server, api) = support::faultproxy().await;
    let listen = api.proxy("payment", up).await;
    let mut h = on("POST", "/refund", HttpAction::Status);
    h.status = 503;
    api.add("payment", &http_toxic("refunds-503", h)).await;
    let mut s = TcpStream::connect(&listen).await.expect("connects");
    s.write_all(&[charge1, refund, charge2, charge3].concat())
        .await
        .expect("pipelined");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let want_tail = [r2.clone(), r3.clone()].concat();
    tokio::time::timeout(WAIT, async {
        while !got.ends_with(&want_tail) {
            let n = s.read(&mut buf).await.expect("read");
            assert!(n > 0, "closed early: {:?}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .expect("all responses within the wait");
    assert_eq!(
        task.await.expect("server"),
        forwarded,
        "the server got the other requests byte for byte"
    );
    assert!(got.starts_with(&r1), "{:?}", String::from_utf8_lossy(&got));
    let answer = &got[r1.len()..got.len() - want_tail.len()];
    let text = String::from_utf8_lossy(answer);
    assert!(
        text.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
        "{text}"
    );
    let (head, body) = text.split_once("\r\n\r\n").expect("head");
    assert!(
        head.contains(&format!("content-length: {}", body.len())),
        "{text}"
    );
    let body: serde_json::Value = serde_json::from_str(body).expect("json");
    assert_eq!(body["error"], "injected");
    assert!(
        body["message"]
            .as_str()
            .expect("message")
            .contains("POST /refund"),
        "{body}"
    );
    server.shutdown().await;
}

/// Proves `delay` holds only the matching responses, by at least `delay_ms`, and delivers them
/// whole.
#[tokio::test]
async fn delay_holds_matching_responses() {
    const DELAY_MS: u64 = 400;
    let (server, api) = support::faultproxy().await;
    let backend = Backend::start().await;
    let listen = api.proxy("svc", backend.addr).await;
    let mut h = on("GET", "/slow", HttpAction::Delay);
    h.delay_ms = DELAY_MS;
    api.add("svc", &http_toxic("slow", h)).await;
    let client = reqwest::Client::new();
    for path in ["/ping", "/slow", "/ping", "/slow"] {
        let t0 = Instant::now();
        let r = client
            .get(format!("http://{listen}{path}"))
            .send()
            .await
            .expect("reply");
        let body: serde_json::Value = r.json().await.expect("whole body");
        assert_eq!(body["ok"], format!("GET {path}"));
        if path == "/slow" {
            assert!(
                t0.elapsed() >= Duration::from_millis(DELAY_MS),
                "{path}: {:?}",
                t0.elapsed()
            );
        }
    }
    assert_eq!(
        (backend.count("GET /slow"), backend.count("GET /ping")),
        (2, 2)
    );
    server.shutdown().await;
}

/// Proves `reset` delivers the request and resets the client's connection instead of the
/// response (a connection loss after the request was sent), on a connection opened before the
/// toxic, whose earlier exchange passed.
#[tokio::test]
async fn reset_loses_the_connection_after_the_request() {
    let (server, api) = support::faultproxy().await;
    let backend = Backend::start().await;
    let listen = api.proxy("payment", backend.addr).await;
    let mut s = TcpStream::connect(&listen).await.expect("connects");
    let ok = exchange(&mut s, &post("/charge", "{}"), WAIT)
        .await
        .expect("charge reply");
    assert!(
        ok.starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&ok)
    );
    api.add(
        "payment",
        &http_toxic("reset-refunds", on("POST", "/refund", HttpAction::Reset)),
    )
    .await;
    s.write_all(&post("/refund", "{}")).await.expect("write");
    let mut buf = [0u8; 256];
    let r = tokio::time::timeout(WAIT, s.read(&mut buf))
        .await
        .expect("answer");
    assert_eq!(
        r.map_err(|e| e.kind()),
        Err(std::io::ErrorKind::ConnectionReset)
    );
    eventually("the refund reached the server", || {
        backend.count("POST /refund") == 1
    })
    .await;
    server.shutdown().await;
}

/// Proves `drop_response` acts on a keep-alive connection opened before the toxic, and leaves
/// it hanging: no byte and no close, while the server processed the request.
#[tokio::test]
async fn drop_response_leaves_the_connection_hanging() {
    let (server, api) = support::faultproxy().await;
    let backend = Backend::start().await;
    let listen = api.proxy("payment", backend.addr).await;
    let mut s = TcpStream::connect(&listen).await.expect("connects");
    exchange(&mut s, &post("/charge", "{}"), WAIT)
        .await
        .expect("charge reply");
    api.add(
        "payment",
        &http_toxic("lost", on("POST", "/refund", HttpAction::DropResponse)),
    )
    .await;
    assert_eq!(
        exchange(&mut s, &post("/refund", "{}"), Duration::from_millis(600)).await,
        None
    );
    eventually("the refund reached the server", || {
        backend.count("POST /refund") == 1
    })
    .await;
    server.shutdown().await;
}

/// Proves `nth`, `every` and `limit` pick exactly the documented exchanges (the 2nd and 4th
/// matching charge of eight, with `nth: 2, every: 2, limit: 2`), counted across connections,
/// and that `toxicity: 0` hits none.
#[tokio::test]
async fn nth_every_limit_pick_the_exchanges() {
    let (server, api) = support::faultproxy().await;
    let backend = Backend::start().await;
    let listen = api.proxy("payment", backend.addr).await;
    let h = HttpToxic {
        nth: 2,
        every: 2,
        limit: 2,
        status: 502,
        ..on("POST", "/charge", HttpAction::Status)
    };
    api.add("payment", &http_toxic("some", h)).await;
    let mut statuses = Vec::new();
    for i in 0..8 {
        // Alternate between a fresh connection and one kept alive.
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(i % 2)
            .build()
            .expect("client");
        let r = client
            .post(format!("http://{listen}/charge"))
            .body("{}")
            .send()
            .await
            .expect("reply");
        statuses.push(r.status().as_u16());
        let _ = client
            .get(format!("http://{listen}/ping"))
            .send()
            .await
            .expect("ping");
    }
    assert_eq!(statuses, [200, 502, 200, 502, 200, 200, 200, 200]);
    assert_eq!(backend.count("POST /charge"), 6);
    let a = api
        .update(
            "payment",
            "some",
            json!({"attributes": {"limit": 0}, "toxicity": 0.0}),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let client = reqwest::Client::new();
    for _ in 0..4 {
        let r = client
            .post(format!("http://{listen}/charge"))
            .body("{}")
            .send()
            .await
            .expect("reply");
        assert_eq!(r.status(), StatusCode::OK);
    }
    server.shutdown().await;
}
