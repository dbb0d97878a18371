//! API failures with Toxiproxy's texts, and the checks of proxy fields.

use std::net::{SocketAddr, ToSocketAddrs};

use axum::http::StatusCode;

use crate::api::NewProxy;

/// Longest proxy or toxic name.
pub const MAX_NAME_BYTES: usize = 200;

/// An API failure: a status and its message (Toxiproxy's text where it has one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// HTTP status.
    pub status: StatusCode,
    /// Message.
    pub message: String,
}

impl Failure {
    /// A failure.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Failure {
        Failure {
            status,
            message: message.into(),
        }
    }

    /// 400 `bad request body: ...`.
    pub fn bad_body(detail: impl std::fmt::Display) -> Failure {
        Failure::new(
            StatusCode::BAD_REQUEST,
            format!("bad request body: {detail}"),
        )
    }

    /// 400 `missing required field: ...`.
    pub fn missing(field: &str) -> Failure {
        Failure::new(
            StatusCode::BAD_REQUEST,
            format!("missing required field: {field}"),
        )
    }

    /// 404 `proxy not found`.
    pub fn proxy_not_found() -> Failure {
        Failure::new(StatusCode::NOT_FOUND, "proxy not found")
    }

    /// 404 `toxic not found`.
    pub fn toxic_not_found() -> Failure {
        Failure::new(StatusCode::NOT_FOUND, "toxic not found")
    }

    /// 500: something outside the request failed (a port in use, the engine).
    pub fn internal(message: impl Into<String>) -> Failure {
        Failure::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// The same failure with ` at proxy N` appended (populate).
    pub fn at_proxy(mut self, i: usize) -> Failure {
        self.message = format!("{} at proxy {}", self.message, i + 1);
        self
    }
}

/// A name usable in a URL path segment.
pub fn check_name(kind: &str, name: &str) -> Result<(), Failure> {
    if name.is_empty() {
        return Err(Failure::missing("name"));
    }
    if name.len() > MAX_NAME_BYTES
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
    {
        return Err(Failure::bad_body(format!(
            "{kind} name '{name}': use at most {MAX_NAME_BYTES} letters, digits, '-', '_', '.' or ':'"
        )));
    }
    Ok(())
}

/// Resolves a listen address as Toxiproxy compares them (`localhost:80` is `127.0.0.1:80`);
/// empty means `127.0.0.1:0`. IPv4 first, as Go's resolver answers.
pub fn resolve_listen(listen: &str) -> Result<SocketAddr, Failure> {
    let s = if listen.is_empty() {
        "127.0.0.1:0"
    } else {
        listen
    };
    let bad = || Failure::bad_body(format!("listen '{listen}': expected host:port"));
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    let addrs: Vec<SocketAddr> = s.to_socket_addrs().map_err(|_| bad())?.collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(bad)
}

/// An upstream is `host:port`.
pub fn check_upstream(upstream: &str) -> Result<(), Failure> {
    if upstream.is_empty() {
        return Err(Failure::missing("upstream"));
    }
    match upstream.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(()),
        _ => Err(Failure::bad_body(format!(
            "upstream '{upstream}': expected host:port"
        ))),
    }
}

/// Every field of a new proxy, before anything changes; its resolved listen address.
pub fn check_new(p: &NewProxy) -> Result<SocketAddr, Failure> {
    if p.name.is_empty() {
        return Err(Failure::missing("name"));
    }
    if p.upstream.is_empty() {
        return Err(Failure::missing("upstream"));
    }
    check_name("proxy", &p.name)?;
    check_upstream(&p.upstream)?;
    resolve_listen(&p.listen)
}
