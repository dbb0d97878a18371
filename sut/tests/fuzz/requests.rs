//! Requests built byte by byte (any path segment, any header bytes but CR and LF, any body)
//! and sent on a fresh connection each, with the checks every answer must pass.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::raw::{self, Reply};

/// Requests sent so far.
pub static SENT: AtomicU64 = AtomicU64::new(0);

/// The `Authorization` a request carries.
#[derive(Debug, Clone)]
pub enum Auth {
    /// `Bearer <cluster secret>`.
    Secret,
    /// None.
    Missing,
    /// `Bearer <this>`: not the secret.
    Wrong(String),
    /// The secret under another scheme.
    Basic,
}

/// One request.
#[derive(Debug, Clone)]
pub struct Req {
    /// Method.
    pub method: &'static str,
    /// Path and query, already encoded.
    pub target: String,
    /// Extra headers, values as raw bytes.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Body (sent with a `content-length`).
    pub body: Option<Vec<u8>>,
    /// Authorization.
    pub auth: Auth,
}

impl Req {
    /// A `GET` of `target` with the secret.
    pub fn get(target: impl Into<String>) -> Req {
        Req {
            method: "GET",
            target: target.into(),
            headers: Vec::new(),
            body: None,
            auth: Auth::Secret,
        }
    }

    /// A JSON `POST` of `body` to `target` with the secret and, if given, an idempotency key.
    pub fn post(target: impl Into<String>, key: Option<&str>, body: Vec<u8>) -> Req {
        let mut headers = vec![("content-type".to_owned(), b"application/json".to_vec())];
        if let Some(k) = key {
            headers.push(("idempotency-key".to_owned(), k.as_bytes().to_vec()));
        }
        Req {
            method: "POST",
            target: target.into(),
            headers,
            body: Some(body),
            auth: Auth::Secret,
        }
    }

    /// Replaces (or, with `None`, removes) header `name`.
    pub fn header(mut self, name: &str, value: Option<Vec<u8>>) -> Req {
        self.headers.retain(|(n, _)| n != name);
        if let Some(v) = value {
            self.headers.push((name.to_owned(), v));
        }
        self
    }
}

/// Percent-encodes every byte but the unreserved ones (a path segment or query value).
pub fn encode(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(b) {
                (*b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Sends `r` to the role at `base` on a new connection; its answer.
pub fn send(base: &str, secret: &str, r: &Req) -> Reply {
    SENT.fetch_add(1, Ordering::Relaxed);
    let mut raw = format!(
        "{} {} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n",
        r.method, r.target
    )
    .into_bytes();
    let auth = match &r.auth {
        Auth::Secret => Some(format!("Bearer {secret}")),
        Auth::Missing => None,
        Auth::Wrong(t) => Some(format!("Bearer {t}")),
        Auth::Basic => Some(format!("Basic {secret}")),
    };
    if let Some(a) = auth {
        raw.extend_from_slice(format!("authorization: {a}\r\n").as_bytes());
    }
    for (n, v) in &r.headers {
        assert!(
            !v.contains(&b'\r') && !v.contains(&b'\n'),
            "no header injection"
        );
        raw.extend_from_slice(n.as_bytes());
        raw.extend_from_slice(b": ");
        raw.extend_from_slice(v);
        raw.extend_from_slice(b"\r\n");
    }
    if let Some(b) = &r.body {
        raw.extend_from_slice(format!("content-length: {}\r\n\r\n", b.len()).as_bytes());
        raw.extend_from_slice(b);
    } else {
        raw.extend_from_slice(b"\r\n");
    }
    raw::exchange(base, &raw)
}

/// Why an answer breaks the contract of a refused request, if it does: not a 4xx (`want`
/// exactly, if given), or not a JSON `{error, message}`.
pub fn refusal_problem(r: &Reply, want: Option<u16>) -> Option<String> {
    let json = r
        .header("content-type")
        .is_some_and(|t| t.starts_with("application/json"));
    let body = r.json();
    let shaped = body["error"].is_string() && body["message"].is_string();
    let status_ok = match want {
        Some(w) => r.status == w,
        None => (400..500).contains(&r.status),
    };
    (!(status_ok && json && shaped)).then(|| {
        format!(
            "status {} (want {}), content type {:?}, body {}",
            r.status,
            want.map_or("4xx".to_owned(), |w| w.to_string()),
            r.header("content-type"),
            String::from_utf8_lossy(&r.body)
        )
    })
}
