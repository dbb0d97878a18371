//! Raw HTTP/1.1 over TCP, for the tests that must control every byte: slow heads and bodies,
//! over-long request lines, garbage, idle keep-alive connections.

// The hostile and fuzz test binaries share this module, each using part of it.
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Largest answer read.
const MAX_REPLY_BYTES: usize = 1 << 20;

/// One answer as it came off the wire.
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reply")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("body", &String::from_utf8_lossy(&self.body))
            .finish()
    }
}

impl Reply {
    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (`null` if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// `host:port` of a base URL `http://host:port`.
pub fn addr_of(base: &str) -> &str {
    base.trim_start_matches("http://").trim_end_matches('/')
}

/// A connection to the role at `base`.
pub fn connect(base: &str) -> TcpStream {
    let s = TcpStream::connect(addr_of(base)).expect("connects");
    s.set_nodelay(true).expect("nodelay");
    s
}

/// Reads one answer within `limit`: the head, then `content-length` bytes of body.
pub fn read_reply(s: &mut TcpStream, limit: Duration) -> io::Result<Reply> {
    let deadline = Instant::now() + limit;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let mut head_end = None;
    let mut want = usize::MAX;
    while buf.len() < want.min(MAX_REPLY_BYTES) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        s.set_read_timeout(Some(left))?;
        let n = s.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if head_end.is_none() {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                head_end = Some(i + 4);
                let head = String::from_utf8_lossy(&buf[..i]).to_lowercase();
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                want = i + 4 + len;
            }
        }
    }
    let Some(end) = head_end else {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("no answer head in {:?}", String::from_utf8_lossy(&buf)),
        ));
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_lowercase(), v.trim().to_owned()))
        .collect();
    Ok(Reply {
        status,
        headers,
        body: buf[end..want.min(buf.len())].to_vec(),
    })
}

/// Sends `raw` on a new connection and reads the answer (10 s at most).
pub fn exchange(base: &str, raw: &[u8]) -> Reply {
    let mut s = connect(base);
    s.write_all(raw).expect("request written");
    read_reply(&mut s, Duration::from_secs(10)).expect("an answer")
}

/// A `GET` of `path` with `Connection: close` and an optional bearer token.
pub fn get(base: &str, path: &str, bearer: Option<&str>) -> Reply {
    let auth = bearer.map_or(String::new(), |b| format!("authorization: Bearer {b}\r\n"));
    let raw = format!("GET {path} HTTP/1.1\r\nhost: x\r\n{auth}connection: close\r\n\r\n");
    exchange(base, raw.as_bytes())
}

/// True once the peer has closed `s` (EOF or reset) within `limit`, having sent nothing.
pub fn closed_without_answer(s: &mut TcpStream, limit: Duration) -> bool {
    s.set_read_timeout(Some(limit)).expect("timeout");
    let mut b = [0u8; 64];
    match s.read(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => matches!(
            e.kind(),
            io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
        ),
    }
}

/// Asserts `r` is the contract's error: `status`, `content-type: application/json`, a body
/// `{"error": code, "message": text}` (with `code` if given).
pub fn assert_json_error(r: &Reply, status: u16, code: Option<&str>, what: &str) {
    assert_eq!(r.status, status, "{what}: {r:?}");
    assert!(
        r.header("content-type")
            .is_some_and(|t| t.starts_with("application/json")),
        "{what}: content type of {r:?}"
    );
    let body = r.json();
    let (Some(error), Some(_)) = (body["error"].as_str(), body["message"].as_str()) else {
        panic!("{what}: not an {{error, message}} body: {r:?}");
    };
    if let Some(code) = code {
        assert_eq!(error, code, "{what}: {body}");
    }
}
