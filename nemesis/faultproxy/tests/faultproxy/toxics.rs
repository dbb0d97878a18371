//! Each TCP toxic on real loopback traffic, as Toxiproxy documents it: the bytes delivered
//! (exactly, or exactly the ones it was asked to pass) and a lower bound on when (never an upper
//! bound: the machine is shared and loaded).

use std::time::{Duration, Instant};

use faultproxy::api::{Stream, Toxic, ToxicKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{self, read_all, WAIT};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Sends `data` and reads back `data.len()` bytes; the bytes and the time taken.
async fn round_trip(listen: &str, data: &[u8]) -> (Vec<u8>, Duration) {
    let mut s = TcpStream::connect(listen).await.expect("connects");
    let t0 = Instant::now();
    let (mut r, mut w) = s.split();
    let mut back = vec![0u8; data.len()];
    let (a, b) = tokio::join!(w.write_all(data), async {
        tokio::time::timeout(WAIT, r.read_exact(&mut back)).await
    });
    a.expect("sent");
    b.expect("within the wait").expect("echoed");
    (back, t0.elapsed())
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 251) as u8).collect()
}

/// Proves `latency` delays data each way by at least its latency, delivers the bytes unchanged,
/// and that its removal restores the link; a jitter above the latency is safe.
#[tokio::test]
async fn latency_delays_every_byte() {
    const LATENCY_MS: u64 = 300;
    let (server, api) = support::faultproxy().await;
    let listen = api.proxy("echo", support::echo().await).await;
    let data = pattern(100_000);
    let (back, _) = round_trip(&listen, &data).await;
    assert_eq!(back, data);
    let kind = ToxicKind::Latency {
        latency: LATENCY_MS,
        jitter: 0,
    };
    api.add("echo", &Toxic::new(kind.clone(), Stream::Downstream))
        .await;
    api.add("echo", &Toxic::new(kind, Stream::Upstream)).await;
    let (back, took) = round_trip(&listen, &data).await;
    assert_eq!(back, data, "bytes unchanged");
    assert!(took >= ms(2 * LATENCY_MS), "both ways: only {took:?}");
    api.remove("echo", "latency_upstream").await;
    api.remove("echo", "latency_downstream").await;
    let wild = ToxicKind::Latency {
        latency: 5,
        jitter: 50,
    };
    api.add("echo", &Toxic::new(wild, Stream::Downstream)).await;
    for _ in 0..3 {
        let (back, _) = round_trip(&listen, b"jitter").await;
        assert_eq!(back, b"jitter");
    }
    server.shutdown().await;
}

/// Proves `timeout` drops the data and closes the connection `timeout` ms after the data it
/// dropped, with `timeout: 0` holding the connection open, and that removing it closes the
/// connections it stalled (their stream lost bytes) while new ones work.
#[tokio::test]
async fn timeout_drops_then_closes() {
    const TIMEOUT_MS: u64 = 400;
    let (server, api) = support::faultproxy().await;
    let listen = api.proxy("echo", support::echo().await).await;
    let t = Toxic::new(
        ToxicKind::Timeout {
            timeout: TIMEOUT_MS,
        },
        Stream::Downstream,
    );
    api.add("echo", &t).await;
    let mut s = TcpStream::connect(&listen).await.expect("connects");
    let t0 = Instant::now();
    s.write_all(b"lost").await.expect("write");
    let (got, end, took) = read_all(&mut s, t0).await;
    assert!(got.is_empty(), "nothing delivered: {got:?}");
    assert!(
        end.is_ok() || end == Err(std::io::ErrorKind::ConnectionReset),
        "{end:?}"
    );
    assert!(took >= ms(TIMEOUT_MS), "closed after {took:?}");
    api.remove("echo", &t.name).await;

    let hold = Toxic::new(ToxicKind::Timeout { timeout: 0 }, Stream::Downstream);
    api.add("echo", &hold).await;
    let mut s = TcpStream::connect(&listen).await.expect("connects");
    s.write_all(b"held").await.expect("write");
    let mut b = [0u8; 4];
    let r = tokio::time::timeout(ms(600), s.read(&mut b)).await;
    assert!(r.is_err(), "timeout 0 neither delivers nor closes: {r:?}");
    api.remove("echo", &hold.name).await;
    let (got, _, _) = read_all(&mut s, Instant::now()).await;
    assert!(got.is_empty(), "the dropped bytes stay dropped: {got:?}");
    let (back, _) = round_trip(&listen, b"again").await;
    assert_eq!(back, b"again");
    server.shutdown().await;
}

/// Proves `reset_peer` lets the request reach the server, withholds the reply and resets the
/// client (RST) at least `timeout` ms after the reply arrived.
#[tokio::test]
async fn reset_peer_resets_after_its_timeout() {
    const TIMEOUT_MS: u64 = 300;
    let (server, api) = support::faultproxy().await;
    let (up, seen) = support::read_to_eof_then_answer().await;
    let listen = api.proxy("svc", up).await;
    let t = Toxic::new(
        ToxicKind::ResetPeer {
            timeout: TIMEOUT_MS,
        },
        Stream::Downstream,
    );
    api.add("svc", &t).await;
    let mut s = TcpStream::connect(&listen).await.expect("connects");
    let t0 = Instant::now();
    s.write_all(b"request").await.expect("write");
    s.shutdown().await.expect("half-close");
    let (got, end, took) = read_all(&mut s, t0).await;
    assert_eq!(end, Err(std::io::ErrorKind::ConnectionReset), "got {got:?}");
    assert!(got.is_empty(), "the reply is withheld: {got:?}");
    assert!(took >= ms(TIMEOUT_MS), "reset after {took:?}");
    assert_eq!(*seen.lock().expect("lock"), vec![b"request".to_vec()]);
    server.shutdown().await;
}

/// Proves `bandwidth` paces a transfer to its rate: 64 KiB at 64 KB/s (64 bytes per ms) takes
/// at least a second, and arrives unchanged.
#[tokio::test]
async fn bandwidth_paces_to_its_rate() {
    let (server, api) = support::faultproxy().await;
    let listen = api.proxy("bw", support::echo().await).await;
    api.add(
        "bw",
        &Toxic::new(ToxicKind::Bandwidth { rate: 64 }, Stream::Downstream),
    )
    .await;
    let data = pattern(64 * 1024);
    let (back, took) = round_trip(&listen, &data).await;
    assert_eq!(back, data);
    assert!(took >= ms(1000), "64 KiB at 64 KB/s took {took:?}");
    server.shutdown().await;
}

/// Proves `slow_close` delivers the reply and holds the server's close at least `delay` ms.
#[tokio::test]
async fn slow_close_holds_the_close() {
    const DELAY_MS: u64 = 400;
    let (server, api) = support::faultproxy().await;
    let listen = api
        .proxy("svc", support::answer_and_close(b"bye").await)
        .await;
    api.add(
        "svc",
        &Toxic::new(ToxicKind::SlowClose { delay: DELAY_MS }, Stream::Downstream),
    )
    .await;
    let mut s = TcpStream::connect(&listen).await.expect("connects");
    let t0 = Instant::now();
    s.write_all(b"hi").await.expect("write");
    let (got, end, took) = read_all(&mut s, t0).await;
    assert_eq!((got.as_slice(), end), (&b"bye"[..], Ok(())));
    assert!(took >= ms(DELAY_MS), "closed after {took:?}");
    server.shutdown().await;
}

/// Proves `limit_data` passes exactly its bytes and then closes the connection, and that the
/// close waits for the bytes before it (here held 200 ms by a latency toxic ahead of it).
#[tokio::test]
async fn limit_data_passes_its_bytes_then_closes() {
    const LATENCY_MS: u64 = 200;
    let (server, api) = support::faultproxy().await;
    let listen = api.proxy("echo", support::echo().await).await;
    let latency = ToxicKind::Latency {
        latency: LATENCY_MS,
        jitter: 0,
    };
    api.add("echo", &Toxic::new(latency, Stream::Downstream))
        .await;
    api.add(
        "echo",
        &Toxic::new(ToxicKind::LimitData { bytes: 10 }, Stream::Downstream),
    )
    .await;
    let mut s = TcpStream::connect(&listen).await.expect("connects");
    let t0 = Instant::now();
    s.write_all(b"0123456789abcdefghij").await.expect("write");
    let (got, end, took) = read_all(&mut s, t0).await;
    assert_eq!(got, b"0123456789", "{end:?}");
    assert!(
        end.is_ok() || end == Err(std::io::ErrorKind::ConnectionReset),
        "{end:?}"
    );
    assert!(took >= ms(LATENCY_MS), "closed after {took:?}");
    server.shutdown().await;
}

/// Proves `slicer` delivers every byte in order, in slices at least `delay` apart: 100 bytes in
/// slices of at most 13 take at least 7 pauses of 20 ms.
#[tokio::test]
async fn slicer_slices_with_pauses() {
    let (server, api) = support::faultproxy().await;
    let listen = api.proxy("echo", support::echo().await).await;
    let kind = ToxicKind::Slicer {
        average_size: 10,
        size_variation: 3,
        delay: 20_000,
    };
    api.add("echo", &Toxic::new(kind, Stream::Downstream)).await;
    let data = pattern(100);
    let (back, took) = round_trip(&listen, &data).await;
    assert_eq!(back, data);
    assert!(took >= ms(7 * 20), "sliced transfer took {took:?}");
    server.shutdown().await;
}

/// Proves `noop` passes a large transfer byte for byte, and the server's close after it.
#[tokio::test]
async fn noop_passes_everything() {
    let (server, api) = support::faultproxy().await;
    let (up, seen) = support::read_to_eof_then_answer().await;
    let listen = api.proxy("svc", up).await;
    api.add("svc", &Toxic::new(ToxicKind::Noop, Stream::Upstream))
        .await;
    api.add("svc", &Toxic::new(ToxicKind::Noop, Stream::Downstream))
        .await;
    let data = pattern(1 << 20);
    let mut s = TcpStream::connect(&listen).await.expect("connects");
    let t0 = Instant::now();
    s.write_all(&data).await.expect("write");
    s.shutdown().await.expect("half-close");
    let (got, end, took) = read_all(&mut s, t0).await;
    assert_eq!(
        (String::from_utf8_lossy(&got), end),
        ("got 1048576 bytes".into(), Ok(()))
    );
    assert_eq!(seen.lock().expect("lock")[0], data, "byte for byte");
    assert!(took >= Duration::ZERO);
    server.shutdown().await;
}

/// Proves `toxicity` applies per connection: at 0 a toxic never acts, and updating it to 1
/// applies it to the open connection too (Toxiproxy restarts an updated toxic).
#[tokio::test]
async fn toxicity_chooses_connections() {
    const LATENCY_MS: u64 = 300;
    let (server, api) = support::faultproxy().await;
    let listen = api.proxy("echo", support::echo().await).await;
    let mut t = Toxic::new(
        ToxicKind::Latency {
            latency: LATENCY_MS,
            jitter: 0,
        },
        Stream::Downstream,
    );
    t.toxicity = 0.0;
    api.add("echo", &t).await;
    let mut s = TcpStream::connect(&listen).await.expect("connects");
    let mut b = [0u8; 2];
    s.write_all(b"no").await.expect("write");
    s.read_exact(&mut b).await.expect("echo");
    let a = api
        .update("echo", &t.name, serde_json::json!({"toxicity": 1.0}))
        .await;
    assert!(a.status.is_success(), "{}", a.text);
    let t0 = Instant::now();
    s.write_all(b"ok").await.expect("write");
    s.read_exact(&mut b).await.expect("echo");
    assert_eq!(&b, b"ok");
    assert!(
        t0.elapsed() >= ms(LATENCY_MS),
        "after the update: {:?}",
        t0.elapsed()
    );
    server.shutdown().await;
}
