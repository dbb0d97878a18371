//! Closes and half-closes: data in flight when a side closes is delivered (after its delay)
//! before the close is passed on, and a half-close on one side reaches the other as a
//! half-close.

use std::time::{Duration, Instant};

use faultproxy::api::{Stream, Toxic, ToxicKind};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::support::{self, read_all};

fn latency(ms: u64, stream: Stream) -> Toxic {
    Toxic::new(
        ToxicKind::Latency {
            latency: ms,
            jitter: 0,
        },
        stream,
    )
}

/// Proves the reported bug is gone: behind a 300 ms latency toxic, a server that answers and
/// closes at once delivers its whole reply about 300 ms later, then the close; the client no
/// longer sees an immediate EOF with nothing.
#[tokio::test]
async fn reply_then_close_arrives_after_the_latency() {
    let (server, api) = support::faultproxy().await;
    let listen = api
        .proxy("svc", support::answer_and_close(b"reply-bytes").await)
        .await;
    api.add("svc", &latency(300, Stream::Downstream)).await;
    for _ in 0..3 {
        let mut s = TcpStream::connect(&listen).await.expect("connects");
        let t0 = Instant::now();
        s.write_all(b"hello").await.expect("write");
        let (got, end, took) = read_all(&mut s, t0).await;
        assert_eq!(
            got, b"reply-bytes",
            "the whole reply, then the close ({end:?})"
        );
        assert_eq!(end, Ok(()), "a clean close after the data");
        assert!(took >= Duration::from_millis(300), "after {took:?}");
    }
    server.shutdown().await;
}

/// Proves half-closes propagate both ways, after the data before them: the client sends and
/// half-closes through a 200 ms upstream latency; the server, which answers only once it has
/// read everything up to the close, gets all the bytes and the close, and its answer reaches the
/// client, which still reads after its own half-close.
#[tokio::test]
async fn half_close_reaches_the_other_side_after_the_data() {
    let (server, api) = support::faultproxy().await;
    let (up, seen) = support::read_to_eof_then_answer().await;
    let listen = api.proxy("svc", up).await;
    api.add("svc", &latency(200, Stream::Upstream)).await;
    let mut s = TcpStream::connect(&listen).await.expect("connects");
    let t0 = Instant::now();
    s.write_all(b"first ").await.expect("write");
    s.write_all(b"second").await.expect("write");
    s.shutdown().await.expect("half-close");
    let (got, end, took) = read_all(&mut s, t0).await;
    assert_eq!((got.as_slice(), end), (&b"got 12 bytes"[..], Ok(())));
    assert_eq!(*seen.lock().expect("lock"), vec![b"first second".to_vec()]);
    assert!(took >= Duration::from_millis(200), "after {took:?}");
    server.shutdown().await;
}

/// Proves that removing a latency toxic releases the data it holds (Toxiproxy flushes an
/// interrupted toxic) rather than losing it: the reply held for 60 s arrives after the removal.
#[tokio::test]
async fn removing_latency_releases_held_data() {
    let (server, api) = support::faultproxy().await;
    let listen = api
        .proxy("svc", support::answer_and_close(b"held reply").await)
        .await;
    let t = latency(60_000, Stream::Downstream);
    api.add("svc", &t).await;
    let mut s = TcpStream::connect(&listen).await.expect("connects");
    s.write_all(b"hello").await.expect("write");
    tokio::time::sleep(Duration::from_millis(200)).await;
    api.remove("svc", &t.name).await;
    let (got, end, _) = read_all(&mut s, Instant::now()).await;
    assert_eq!((got.as_slice(), end), (&b"held reply"[..], Ok(())));
    server.shutdown().await;
}

/// Proves disabling a proxy closes its open connections and refuses new ones, and enabling it
/// again restores traffic on the same address.
#[tokio::test]
async fn disabling_cuts_the_link_and_enabling_restores_it() {
    use reqwest::Method;
    use tokio::io::AsyncReadExt;
    let (server, api) = support::faultproxy().await;
    let listen = api.proxy("link", support::echo().await).await;
    let mut s = TcpStream::connect(&listen).await.expect("connects");
    s.write_all(b"hi").await.expect("write");
    let mut buf = [0u8; 2];
    s.read_exact(&mut buf).await.expect("echo");
    let a = api
        .call(
            Method::PATCH,
            "/proxies/link",
            Some(r#"{"enabled": false}"#),
        )
        .await;
    assert!(a.status.is_success(), "{}", a.text);
    let (got, _, _) = read_all(&mut s, Instant::now()).await;
    assert!(got.is_empty(), "the open connection is closed: {got:?}");
    assert!(
        TcpStream::connect(&listen).await.is_err(),
        "new connections refused"
    );
    let a = api
        .call(Method::PATCH, "/proxies/link", Some(r#"{"enabled": true}"#))
        .await;
    assert_eq!(a.json["listen"], serde_json::json!(listen), "same address");
    let mut s = TcpStream::connect(&listen).await.expect("connects again");
    s.write_all(b"ok").await.expect("write");
    s.read_exact(&mut buf).await.expect("echo again");
    assert_eq!(&buf, b"ok");
    server.shutdown().await;
}
