//! Shared test fixtures: an in-process faultproxy, a counting HTTP backend, a TCP echo server.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::routing::get;
use faultproxy::Server;
use nemesis::toxiproxy::{NewProxy, ToxiproxyClient};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A faultproxy API on a free loopback port, and a client of it.
pub async fn faultproxy() -> (Server, ToxiproxyClient) {
    let server = Server::start("127.0.0.1:0".parse().expect("addr"), 7)
        .await
        .expect("faultproxy starts");
    let client = ToxiproxyClient::new(&server.url()).expect("client");
    (server, client)
}

/// An HTTP server answering `GET /ping` with `pong`, counting the requests it received.
pub struct Backend {
    pub addr: SocketAddr,
    pub hits: Arc<AtomicU64>,
}

impl Backend {
    pub async fn start() -> Backend {
        let hits = Arc::new(AtomicU64::new(0));
        let h = hits.clone();
        let app = axum::Router::new().route(
            "/ping",
            get(move || {
                let h = h.clone();
                async move {
                    h.fetch_add(1, Ordering::SeqCst);
                    "pong"
                }
            }),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Backend { addr, hits }
    }

    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::SeqCst)
    }
}

/// A TCP server echoing every byte back.
pub async fn echo() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if s.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
            });
        }
    });
    addr
}

/// Creates a proxy on a free port towards `upstream`; returns its listen address.
pub async fn proxy(client: &ToxiproxyClient, name: &str, upstream: SocketAddr) -> String {
    let p = client
        .create_proxy(&NewProxy {
            name: name.into(),
            listen: "127.0.0.1:0".into(),
            upstream: upstream.to_string(),
            enabled: None,
        })
        .await
        .expect("proxy created");
    assert!(!p.listen.ends_with(":0"), "the bound port is reported");
    p.listen
}

/// A client with a short timeout and no connection reuse (each request a fresh connection).
pub fn http(timeout_ms: u64) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_millis(timeout_ms))
        .pool_max_idle_per_host(0)
        .build()
        .expect("client")
}
