//! Toxics on real TCP traffic through the faultproxy: each changes what it should, and removing
//! it (the heal) undoes it.

use std::time::{Duration, Instant};

use nemesis::toxiproxy::{Stream, Toxic, ToxicKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support;

async fn ping(http: &reqwest::Client, listen: &str) -> Result<Duration, reqwest::Error> {
    let t0 = Instant::now();
    let body = http
        .get(format!("http://{listen}/ping"))
        .send()
        .await?
        .text()
        .await?;
    assert_eq!(body, "pong");
    Ok(t0.elapsed())
}

/// Proves a latency toxic delays each request by at least its latency, that removing it
/// restores requests that take less than that, and that a jitter above the latency is safe.
#[tokio::test]
async fn latency_toxic_adds_the_delay() {
    const LATENCY_MS: u64 = 600;
    let (server, client) = support::faultproxy().await;
    let backend = support::Backend::start().await;
    let listen = support::proxy(&client, "svc", backend.addr).await;
    let http = support::http(5_000);
    let before = ping(&http, &listen).await.expect("ok before");
    assert!(
        before < Duration::from_millis(LATENCY_MS),
        "baseline {before:?}"
    );
    let t = Toxic::new(
        ToxicKind::Latency {
            latency: LATENCY_MS,
            jitter: 0,
        },
        Stream::Downstream,
    );
    client.add_toxic("svc", &t).await.expect("toxic added");
    for _ in 0..2 {
        let d = ping(&http, &listen).await.expect("ok with latency");
        assert!(
            d >= Duration::from_millis(LATENCY_MS),
            "only {d:?} with a {LATENCY_MS} ms toxic"
        );
    }
    client.delete_toxic("svc", &t.name).await.expect("healed");
    let after = ping(&http, &listen).await.expect("ok after");
    assert!(
        after < Duration::from_millis(LATENCY_MS),
        "after heal {after:?}"
    );
    // A jitter above the latency (legal in Toxiproxy) must not break the link.
    let wild = Toxic::new(
        ToxicKind::Latency {
            latency: 5,
            jitter: 50,
        },
        Stream::Downstream,
    );
    client.add_toxic("svc", &wild).await.expect("toxic added");
    for _ in 0..3 {
        ping(&http, &listen)
            .await
            .expect("jitter above latency still answers");
    }
    server.shutdown().await;
}

/// Proves a downstream timeout toxic is a lost response: the server receives and counts the
/// request, the client gets no reply and times out; after the heal replies arrive again.
#[tokio::test]
async fn lost_response_reaches_server_but_not_client() {
    let (server, client) = support::faultproxy().await;
    let backend = support::Backend::start().await;
    let listen = support::proxy(&client, "svc", backend.addr).await;
    let http = support::http(800);
    ping(&http, &listen).await.expect("ok before");
    let t = Toxic::new(ToxicKind::Timeout { timeout: 0 }, Stream::Downstream);
    client.add_toxic("svc", &t).await.expect("toxic added");
    let hits = backend.hits();
    let err = ping(&http, &listen).await.expect_err("no reply");
    assert!(err.is_timeout(), "client timed out: {err}");
    assert_eq!(backend.hits(), hits + 1, "the server processed the request");
    client.delete_toxic("svc", &t.name).await.expect("healed");
    ping(&http, &listen)
        .await
        .expect("replies again after heal");
    server.shutdown().await;
}

/// Proves a downstream reset_peer toxic lets the request reach the server and answers the
/// client with a TCP reset instead of the reply.
#[tokio::test]
async fn reset_peer_resets_the_client() {
    let (server, client) = support::faultproxy().await;
    let backend = support::Backend::start().await;
    let listen = support::proxy(&client, "svc", backend.addr).await;
    let t = Toxic::new(ToxicKind::ResetPeer { timeout: 0 }, Stream::Downstream);
    client.add_toxic("svc", &t).await.expect("toxic added");
    let mut s = TcpStream::connect(&listen).await.expect("connects");
    s.write_all(b"GET /ping HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .expect("write");
    let mut buf = [0u8; 256];
    let r = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("answer");
    let e = r.expect_err("reset, not data or EOF");
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}");
    assert_eq!(backend.hits(), 1, "the request reached the server");
    client.delete_toxic("svc", &t.name).await.expect("healed");
    ping(&support::http(2_000), &listen)
        .await
        .expect("ok after heal");
    server.shutdown().await;
}

/// Proves disabling a proxy closes its open connections and refuses new ones, and enabling it
/// again restores traffic on the same address.
#[tokio::test]
async fn disabled_proxy_cuts_the_link() {
    let (server, client) = support::faultproxy().await;
    let echo = support::echo().await;
    let listen = support::proxy(&client, "link", echo).await;
    let mut s = TcpStream::connect(&listen).await.expect("connects");
    s.write_all(b"hi").await.expect("write");
    let mut buf = [0u8; 2];
    s.read_exact(&mut buf).await.expect("echo");
    client.set_enabled("link", false).await.expect("disabled");
    let n = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf))
        .await
        .expect("closed");
    assert!(matches!(n, Ok(0) | Err(_)), "open connection closed: {n:?}");
    assert!(
        TcpStream::connect(&listen).await.is_err(),
        "new connections refused"
    );
    let p = client.set_enabled("link", true).await.expect("enabled");
    assert_eq!(p.listen, listen, "same address after re-enable");
    let mut s = TcpStream::connect(&listen).await.expect("connects again");
    s.write_all(b"ok").await.expect("write");
    s.read_exact(&mut buf).await.expect("echo again");
    assert_eq!(&buf, b"ok");
    server.shutdown().await;
}

/// Proves a bandwidth toxic slows a transfer to about its rate: 64 KiB at 64 KB/s takes most
/// of a second, against milliseconds without it.
#[tokio::test]
async fn bandwidth_toxic_limits_throughput() {
    const BYTES: usize = 64 * 1024;
    let (server, client) = support::faultproxy().await;
    let echo = support::echo().await;
    let listen = support::proxy(&client, "bw", echo).await;
    async fn transfer(listen: &str) -> Duration {
        let mut s = TcpStream::connect(listen).await.expect("connects");
        let t0 = Instant::now();
        let data = vec![7u8; BYTES];
        let (mut r, mut w) = s.split();
        let write = w.write_all(&data);
        let mut back = vec![0u8; BYTES];
        let read = r.read_exact(&mut back);
        let (a, b) = tokio::join!(write, read);
        a.expect("sent");
        b.expect("echoed");
        t0.elapsed()
    }
    let fast = transfer(&listen).await;
    let t = Toxic::new(ToxicKind::Bandwidth { rate: 64 }, Stream::Downstream);
    client.add_toxic("bw", &t).await.expect("toxic added");
    let slow = transfer(&listen).await;
    assert!(
        slow >= Duration::from_millis(700),
        "64 KiB at 64 KB/s took {slow:?}"
    );
    assert!(
        fast < Duration::from_millis(700),
        "without the toxic {fast:?}"
    );
    server.shutdown().await;
}
