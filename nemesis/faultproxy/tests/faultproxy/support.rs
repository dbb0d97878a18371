//! Shared fixtures: an in-process faultproxy and a small client of its API, and real loopback
//! servers (echo, answer-then-close, read-to-EOF-then-answer, a counting HTTP backend).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use faultproxy::api::{NewProxy, Proxy, Toxic};
use faultproxy::Server;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How long a test waits for anything that should happen.
pub const WAIT: Duration = Duration::from_secs(10);

/// A client of the API under test (the typed client lives in nemesis, which this crate does not
/// depend on).
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
}

/// An answer: status, the request-id header, the JSON body (`Null` when empty).
pub struct Answer {
    pub status: StatusCode,
    pub request_id: Option<String>,
    pub text: String,
    pub json: Value,
}

impl Api {
    pub async fn call(&self, method: Method, path: &str, body: Option<&str>) -> Answer {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_owned());
        }
        let resp = req.send().await.expect("api answers");
        let status = resp.status();
        let request_id = resp
            .headers()
            .get("x-toxiproxy-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = resp.text().await.expect("body");
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            request_id,
            text,
            json,
        }
    }

    /// Creates a proxy on a free port towards `upstream`; returns its bound listen address.
    pub async fn proxy(&self, name: &str, upstream: SocketAddr) -> String {
        let body = serde_json::to_string(&NewProxy {
            name: name.into(),
            listen: "127.0.0.1:0".into(),
            upstream: upstream.to_string(),
            enabled: None,
        })
        .expect("json");
        let a = self.call(Method::POST, "/proxies", Some(&body)).await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
        let p: Proxy = serde_json::from_value(a.json).expect("proxy");
        assert!(!p.listen.ends_with(":0"), "the bound port is reported");
        p.listen
    }

    pub async fn add(&self, proxy: &str, t: &Toxic) -> Toxic {
        let body = serde_json::to_string(t).expect("json");
        let a = self
            .call(
                Method::POST,
                &format!("/proxies/{proxy}/toxics"),
                Some(&body),
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        serde_json::from_value(a.json).expect("toxic")
    }

    pub async fn update(&self, proxy: &str, toxic: &str, body: Value) -> Answer {
        self.call(
            Method::PATCH,
            &format!("/proxies/{proxy}/toxics/{toxic}"),
            Some(&body.to_string()),
        )
        .await
    }

    pub async fn remove(&self, proxy: &str, toxic: &str) {
        let a = self
            .call(
                Method::DELETE,
                &format!("/proxies/{proxy}/toxics/{toxic}"),
                None,
            )
            .await;
        assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.text);
    }
}

/// A faultproxy on a free loopback port, and a client of its API.
pub async fn faultproxy() -> (Server, Api) {
    let server = Server::start("127.0.0.1:0".parse().expect("addr"), 7)
        .await
        .expect("faultproxy starts");
    let api = Api {
        base: server.url(),
        http: reqwest::Client::new(),
    };
    (server, api)
}

async fn listener() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let a = l.local_addr().expect("addr");
    (l, a)
}

/// A TCP server echoing every byte back; it half-closes when its client does.
pub async fn echo() -> SocketAddr {
    let (l, addr) = listener().await;
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
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
                let _ = s.shutdown().await;
            });
        }
    });
    addr
}

/// A server that, on each connection, reads one chunk, answers `reply` and closes at once.
pub async fn answer_and_close(reply: &'static [u8]) -> SocketAddr {
    let (l, addr) = listener().await;
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut b = [0u8; 1024];
                if s.read(&mut b).await.unwrap_or(0) > 0 {
                    let _ = s.write_all(reply).await;
                }
            });
        }
    });
    addr
}

/// A server that reads until its client half-closes, then answers `got <n> bytes` and closes;
/// it records what it read.
pub async fn read_to_eof_then_answer() -> (SocketAddr, Arc<Mutex<Vec<Vec<u8>>>>) {
    let (l, addr) = listener().await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let seen = s2.clone();
            tokio::spawn(async move {
                let mut all = Vec::new();
                if s.read_to_end(&mut all).await.is_ok() {
                    let reply = format!("got {} bytes", all.len());
                    seen.lock().expect("lock").push(all);
                    let _ = s.write_all(reply.as_bytes()).await;
                }
            });
        }
    });
    (addr, seen)
}

/// Reads until EOF (or an error) within [`WAIT`]; the bytes, how it ended, and when.
pub async fn read_all(
    s: &mut TcpStream,
    t0: Instant,
) -> (Vec<u8>, Result<(), std::io::ErrorKind>, Duration) {
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    let end = tokio::time::timeout(WAIT, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) => return Ok(()),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => return Err(e.kind()),
            }
        }
    })
    .await
    .expect("the connection ends within the wait");
    (got, end, t0.elapsed())
}

/// An HTTP backend counting requests per `METHOD path`, answering each with a JSON body that
/// names it.
#[derive(Clone)]
pub struct Backend {
    pub addr: SocketAddr,
    counts: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl Backend {
    pub async fn start() -> Backend {
        use axum::routing::{get, post};
        let counts = Arc::new(Mutex::new(BTreeMap::new()));
        let app = axum::Router::new()
            .route("/charge", post(handler))
            .route("/refund", post(handler))
            .route("/ping", get(handler))
            .route("/slow", get(handler))
            .with_state(counts.clone());
        let (l, addr) = listener().await;
        tokio::spawn(async move { axum::serve(l, app).await });
        Backend { addr, counts }
    }

    /// Requests seen for `key` (`POST /refund`).
    pub fn count(&self, key: &str) -> u64 {
        self.counts
            .lock()
            .expect("lock")
            .get(key)
            .copied()
            .unwrap_or(0)
    }
}

async fn handler(
    axum::extract::State(counts): axum::extract::State<Arc<Mutex<BTreeMap<String, u64>>>>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    body: String,
) -> axum::Json<Value> {
    let key = format!("{method} {}", uri.path());
    *counts.lock().expect("lock").entry(key.clone()).or_default() += 1;
    axum::Json(serde_json::json!({"ok": key, "len": body.len()}))
}
