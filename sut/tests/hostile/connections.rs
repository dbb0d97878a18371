//! Hostile connections: slow bodies, slow heads, silent and idle connections, and more
//! connections than a role takes.

use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::cluster::{Auth, Cluster, Spec};
use crate::raw::{self, assert_json_error};

/// The value of the unlabelled series `name` in the role's `/metrics`.
pub fn metric(base: &str, name: &str) -> Option<f64> {
    let r = raw::get(base, "/metrics", None);
    let text = String::from_utf8_lossy(&r.body).into_owned();
    text.lines()
        .filter_map(|l| l.strip_prefix(name))
        .filter_map(|rest| rest.strip_prefix(' '))
        .find_map(|v| v.trim().parse().ok())
}

const ORDER: &str = r#"{"customer":"c","items":[{"sku":"sku-0","qty":1}],"amount":100}"#;

/// Waits for the order leader and places one order, so that the next order is answered by a
/// leader whose term is ready.
fn warm_up(c: &Cluster) {
    c.await_leader("order", None);
    let url = format!("{}/orders", c.url("n1", "order"));
    let ok = c.wait_until(Duration::from_secs(20), || {
        c.post_as(&url, Some("warm-up"), ORDER, Auth::Missing).0 == 202
    });
    assert!(ok, "the order leader never accepted an order");
}

/// Proves 300 connections that send a `POST /orders` head and then one body byte a second
/// (more than the 256 in-flight slots a role has by default) hold connections, not request
/// slots: meanwhile a real `POST /orders` gets 202 within 2 s and `/health` answers 200
/// throughout, and every slow one is cut with a 408 `request_timeout` JSON error once its body
/// timeout passes.
#[test]
fn slow_bodies_hold_connections_not_request_slots() {
    const SLOW: usize = 300;
    let c = Spec::new(1, &["inventory", "payment", "shipping", "order"])
        .settings(json!({"body_read_timeout_ms": 4000}))
        .start();
    warm_up(&c);
    let base = c.url("n1", "order");
    let in_flight = pipeline::config::Settings::default().max_in_flight_requests;
    assert!(SLOW > in_flight, "more slow bodies than request slots");
    let mut slow: Vec<TcpStream> = (0..SLOW)
        .map(|i| {
            let mut s = raw::connect(&base);
            let head = format!(
                "POST /orders HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
                 idempotency-key: slow-{i}\r\ncontent-length: 64\r\n\r\n{{"
            );
            s.write_all(head.as_bytes()).expect("head written");
            s
        })
        .collect();
    let held = c.wait_until(Duration::from_secs(10), || {
        metric(&base, "connections_open").is_some_and(|n| n >= SLOW as f64)
    });
    assert!(held, "the role never held the {SLOW} slow connections");
    let mut writers: Vec<TcpStream> = slow.iter().map(|s| s.try_clone().expect("clone")).collect();
    let stop = AtomicBool::new(false);
    let (health_ok, health_bad) = (AtomicUsize::new(0), AtomicUsize::new(0));
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for _second in 0..30 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                for w in &mut writers {
                    // A connection the server already cut refuses the byte: that is the point.
                    let _ = w.write_all(b" ");
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        });
        scope.spawn(|| {
            for _poll in 0..200 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let (s, _) = c.get_as(&format!("{base}/health"), Auth::Missing);
                let counter = if s == 200 { &health_ok } else { &health_bad };
                counter.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        let started = Instant::now();
        let (status, body) = c.post_as(
            &format!("{base}/orders"),
            Some("real-1"),
            ORDER,
            Auth::Missing,
        );
        let took = started.elapsed();
        assert_eq!(status, 202, "a real order among slow bodies: {body}");
        assert!(
            took < Duration::from_secs(2),
            "the real order took {took:?}"
        );
        eprintln!("a real order among {SLOW} slow bodies: 202 after {took:?}");
        for (i, s) in slow.iter_mut().enumerate() {
            let r = raw::read_reply(s, Duration::from_secs(20)).expect("an answer");
            assert_json_error(&r, 408, Some("request_timeout"), &format!("slow body {i}"));
        }
        stop.store(true, Ordering::SeqCst);
    });
    assert_eq!(
        health_bad.load(Ordering::SeqCst),
        0,
        "/health failed meanwhile"
    );
    assert!(
        health_ok.load(Ordering::SeqCst) >= 5,
        "/health was polled throughout"
    );
    let (s, body) = c.get(&format!("{base}/admin/orders"));
    assert_eq!(s, 200);
    let keys: Vec<&str> = body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|o| o["idempotency_key"].as_str())
        .collect();
    assert!(
        keys.iter().all(|k| !k.starts_with("slow-")),
        "a cut order was placed: {keys:?}"
    );
    assert!(keys.contains(&"real-1"));
}

/// Proves the connection limits of a role with `max_connections` 8: eight open connections
/// are served, a ninth is closed at once without an answer (and counted), and a slot freed is
/// taken again; a head sent too slowly, and a connection that sends nothing, get a 408
/// `request_timeout` JSON error when the header timeout passes, but a whole request that
/// waited on a keep-alive connection while the role was paused (SIGSTOP) past its idle timeout
/// is served after SIGCONT; an
/// idle keep-alive connection keeps working within the idle timeout and is closed after it.
#[test]
fn connection_cap_head_and_idle_timeouts() {
    const CAP: usize = 8;
    let c = Spec::new(1, &["payment"])
        .settings(json!({
            "max_in_flight_requests": 4,
            "max_connections": CAP,
            "header_read_timeout_ms": 1500,
            "idle_timeout_ms": 4000,
        }))
        .start();
    let base = c.url("n1", "payment");
    // The test client's pooled connection closes after the idle timeout; then only the
    // connection asking is open.
    let alone = c.wait_until(Duration::from_secs(15), || {
        metric(&base, "connections_open") == Some(1.0)
    });
    assert!(alone, "connections from the start stayed open");
    // Let the asking connection's close finish before counting slots.
    std::thread::sleep(Duration::from_millis(300));

    let health = b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n";
    let mut held: Vec<TcpStream> = (0..CAP)
        .map(|i| {
            let mut s = raw::connect(&base);
            s.write_all(health).expect("request");
            let r = raw::read_reply(&mut s, Duration::from_secs(5)).expect("answer");
            assert_eq!(r.status, 200, "connection {i}: {r:?}");
            s
        })
        .collect();
    let mut extra = raw::connect(&base);
    assert!(
        raw::closed_without_answer(&mut extra, Duration::from_secs(2)),
        "a connection beyond the cap was served"
    );
    drop(held.pop());
    let again = c.wait_until(Duration::from_secs(5), || {
        let mut s = raw::connect(&base);
        s.write_all(health).is_ok()
            && raw::read_reply(&mut s, Duration::from_secs(1)).is_ok_and(|r| r.status == 200)
    });
    assert!(again, "a freed slot was not taken again");
    drop(held);
    let refused = c.wait_until(Duration::from_secs(5), || {
        metric(&base, "connections_refused_total").is_some_and(|n| n >= 1.0)
    });
    assert!(refused, "the refused connection was not counted");

    let mut slow_head = raw::connect(&base);
    slow_head
        .write_all(b"GET /health HTTP/1.1\r\nhos")
        .expect("part of a head");
    let r = raw::read_reply(&mut slow_head, Duration::from_secs(10)).expect("408");
    assert_json_error(&r, 408, Some("request_timeout"), "slow head");
    let mut silent = raw::connect(&base);
    let r = raw::read_reply(&mut silent, Duration::from_secs(10)).expect("408");
    assert_json_error(&r, 408, Some("request_timeout"), "silent connection");

    // One answered request first: the connection is then surely accepted and idle, its
    // deadline the idle timeout (4 s) from that answer, so the pause below starts well inside
    // it even on a loaded machine, and the next request arrives while the role is stopped and
    // waits there past the deadline.
    let mut waiting = raw::connect(&base);
    waiting.write_all(health).expect("request");
    let r = raw::read_reply(&mut waiting, Duration::from_secs(5)).expect("answer");
    assert_eq!(
        r.status, 200,
        "the waiting connection's first request: {r:?}"
    );
    c.signal("n1", "payment", nix::sys::signal::Signal::SIGSTOP);
    waiting.write_all(health).expect("request");
    std::thread::sleep(Duration::from_millis(4500));
    c.signal("n1", "payment", nix::sys::signal::Signal::SIGCONT);
    let r = raw::read_reply(&mut waiting, Duration::from_secs(10)).expect("answer");
    assert_eq!(r.status, 200, "a request that waited out a pause: {r:?}");

    let mut idle = raw::connect(&base);
    for round in 0..2 {
        idle.write_all(health).expect("request");
        let r = raw::read_reply(&mut idle, Duration::from_secs(5)).expect("answer");
        assert_eq!(r.status, 200, "round {round} on one keep-alive connection");
        std::thread::sleep(Duration::from_millis(1000));
    }
    let since = Instant::now();
    assert!(
        raw::closed_without_answer(&mut idle, Duration::from_secs(15)),
        "the idle connection stayed open"
    );
    assert!(
        since.elapsed() >= Duration::from_millis(2500),
        "closed after {:?}, before the 4 s idle timeout",
        since.elapsed()
    );
}
