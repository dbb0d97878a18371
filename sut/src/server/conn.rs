//! One inbound connection, guarded: its byte stream wrapped so that a peer cannot hold it
//! without sending (header-read and keep-alive idle timeouts), cannot stall it without reading
//! (a write-stall timeout), and never gets hyper's empty automatic error responses (they are
//! replaced by `{error, message}` JSON). A connection the server closes first is drained for a
//! moment (a lingering close), so that the peer reads the answer instead of a reset.
//!
//! The request side tells the guard where the connection is ([`ConnState`]): reading a request
//! head, busy with a request (the body timeout is the request side's), or done with it.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, Sleep};

/// How long a connection the server closes is drained before its socket is dropped.
pub const LINGER: Duration = Duration::from_secs(2);
/// Most bytes drained in a lingering close.
pub const LINGER_MAX_BYTES: usize = 16 * 1024 * 1024;

/// The connection timeouts (docs/contracts.md §1 `settings`).
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// A request head must be complete this long after the connection opened or, on a
    /// keep-alive connection, after its first byte arrived.
    pub header_read: Duration,
    /// A request body must be complete this long after its head; also how long a response
    /// write may stall on a peer that does not read.
    pub body_read: Duration,
    /// How long a keep-alive connection may sit between requests.
    pub idle: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for (the rest of) a request head, since then.
    Head(Instant),
    /// A request is being served.
    Busy,
    /// The response is produced (maybe still being written).
    Done,
    /// Between requests, since then.
    Idle(Instant),
}

/// Where a connection is, shared by its guard and its requests.
#[derive(Debug)]
pub struct ConnState {
    phase: Mutex<Phase>,
}

impl ConnState {
    /// A connection that has just opened: its first request head is due.
    pub fn new() -> Arc<ConnState> {
        Arc::new(ConnState {
            phase: Mutex::new(Phase::Head(Instant::now())),
        })
    }

    fn with<R>(&self, f: impl FnOnce(&mut Phase) -> R) -> R {
        let mut p = self.phase.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut p)
    }

    /// A request head was parsed: its request is being served.
    pub fn busy(&self) {
        self.with(|p| *p = Phase::Busy);
    }

    /// The response is produced.
    pub fn done(&self) {
        self.with(|p| {
            if *p == Phase::Busy {
                *p = Phase::Done;
            }
        });
    }

    /// The deadline that applies now, if any, and whether it is a request head's.
    fn before_read(&self, t: &Timeouts, now: Instant) -> Option<(Instant, bool)> {
        self.with(|p| {
            if *p == Phase::Done {
                *p = Phase::Idle(now);
            }
            match *p {
                Phase::Head(since) => Some((since + t.header_read, true)),
                Phase::Idle(since) => Some((since + t.idle, false)),
                Phase::Busy | Phase::Done => None,
            }
        })
    }

    /// Bytes arrived: between requests, that starts the next head.
    fn after_read(&self, now: Instant) {
        self.with(|p| {
            if matches!(*p, Phase::Idle(_)) {
                *p = Phase::Head(now);
            }
        });
    }
}

/// A raw HTTP/1.1 response with a JSON error body, closing the connection.
pub fn raw_json_error(status: u16, code: &str, message: &str) -> Vec<u8> {
    let reason = axum::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    let body = serde_json::json!({"error": code, "message": message}).to_string();
    format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The status of hyper's automatic response to a request it could not parse, if `buf` begins
/// with one: a 4xx head without a content type. Every response the service makes has one
/// (`server::request` ensures it), and JSON and Prometheus text never hold a raw CRLF, so no
/// service bytes match.
fn automatic_error(buf: &[u8]) -> Option<u16> {
    let rest = buf.strip_prefix(b"HTTP/1.1 ")?;
    let code: u16 = std::str::from_utf8(rest.get(..3)?).ok()?.parse().ok()?;
    if !(400..500).contains(&code) {
        return None;
    }
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = buf[..end].to_ascii_lowercase();
    let typed = head.windows(15).any(|w| w == b"\r\ncontent-type:");
    (!typed).then_some(code)
}

/// The JSON answer that replaces hyper's automatic one.
fn replacement(status: u16, max_uri_bytes: usize) -> Vec<u8> {
    let (code, message) = match status {
        414 => (
            "uri_too_long",
            format!("the request target is longer than {max_uri_bytes} bytes"),
        ),
        431 => (
            "headers_too_large",
            "the request head is too large or has too many headers".to_owned(),
        ),
        _ => (
            "bad_request",
            "the request is not valid HTTP/1.1 (request line or headers)".to_owned(),
        ),
    };
    raw_json_error(status, code, &message)
}

/// The guarded byte stream of one connection.
pub struct Guarded {
    inner: Option<TcpStream>,
    state: Arc<ConnState>,
    timeouts: Timeouts,
    max_uri_bytes: usize,
    read_timer: Pin<Box<Sleep>>,
    read_timer_at: Option<Instant>,
    write_timer: Pin<Box<Sleep>>,
    write_stalled: bool,
    /// No response bytes wait in hyper or in this guard (the last flush completed).
    clean: bool,
    /// The peer closed its side.
    eof: bool,
    /// A timeout fired: the connection reads as closed from now on.
    expired: bool,
    /// The JSON answer being written in place of hyper's automatic one, and how much of it.
    replacing: Option<(Vec<u8>, usize)>,
    /// The replacement is written: whatever hyper still writes is dropped.
    swallow: bool,
    /// The connection's slot, kept through the lingering close.
    permit: Option<Slot>,
}

/// One connection's place under the cap; `connections_open` counts them.
pub struct Slot {
    _permit: OwnedSemaphorePermit,
}

impl Slot {
    /// Takes the place `permit` holds.
    pub fn new(permit: OwnedSemaphorePermit) -> Slot {
        metrics::gauge!("connections_open").increment(1.0);
        Slot { _permit: permit }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        metrics::gauge!("connections_open").decrement(1.0);
    }
}

impl Guarded {
    /// Guards `stream`, holding its connection slot `permit` until it is fully closed.
    pub fn new(
        stream: TcpStream,
        state: Arc<ConnState>,
        timeouts: Timeouts,
        max_uri_bytes: usize,
        permit: Slot,
    ) -> Guarded {
        let now = Instant::now();
        Guarded {
            inner: Some(stream),
            state,
            timeouts,
            max_uri_bytes,
            read_timer: Box::pin(tokio::time::sleep_until(now)),
            read_timer_at: None,
            write_timer: Box::pin(tokio::time::sleep_until(now)),
            write_stalled: false,
            clean: true,
            eof: false,
            expired: false,
            replacing: None,
            swallow: false,
            permit: Some(permit),
        }
    }

    fn stream(&mut self) -> io::Result<&mut TcpStream> {
        self.inner
            .as_mut()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "connection closed"))
    }

    /// A head timed out: answer 408 if nothing else is being written, then read as closed.
    fn head_timed_out(&mut self) {
        metrics::counter!("connections_timed_out_total", "phase" => "head").increment(1);
        if !self.clean {
            return;
        }
        let reply = raw_json_error(
            408,
            "request_timeout",
            &format!(
                "no complete request head within {} ms",
                self.timeouts.header_read.as_millis()
            ),
        );
        if let Some(s) = self.inner.as_ref() {
            // Best effort: the socket buffer of a connection that has written nothing since its
            // last flush takes a few hundred bytes at once.
            let _ = s.try_write(&reply);
        }
    }

    /// Polls the write-stall timer after the socket refused bytes.
    fn stalled(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if !self.write_stalled {
            self.write_stalled = true;
            let at = Instant::now() + self.timeouts.body_read;
            self.write_timer.as_mut().reset(at);
        }
        if self.write_timer.as_mut().poll(cx).is_ready() {
            metrics::counter!("connections_timed_out_total", "phase" => "write").increment(1);
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the peer did not read the response",
            )));
        }
        Poll::Pending
    }

    /// Writes `buf` (or the replacement of hyper's automatic error that it begins).
    fn write_some(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.swallow {
            return Poll::Ready(Ok(buf.len()));
        }
        if self.replacing.is_none() {
            if let Some(status) = automatic_error(buf) {
                metrics::counter!("requests_unparsable_total").increment(1);
                self.replacing = Some((replacement(status, self.max_uri_bytes), 0));
            }
        }
        self.clean = false;
        if let Some((reply, mut at)) = self.replacing.take() {
            while at < reply.len() {
                match Pin::new(self.stream()?).poll_write(cx, &reply[at..]) {
                    Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                    Poll::Ready(Ok(n)) => at += n,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => {
                        self.replacing = Some((reply, at));
                        return self.stalled(cx);
                    }
                }
            }
            self.write_stalled = false;
            self.swallow = true;
            return Poll::Ready(Ok(buf.len()));
        }
        match Pin::new(self.stream()?).poll_write(cx, buf) {
            Poll::Pending => self.stalled(cx),
            done => {
                self.write_stalled = false;
                done
            }
        }
    }
}

impl AsyncRead for Guarded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = &mut *self;
        if me.expired {
            return Poll::Ready(Ok(()));
        }
        let now = Instant::now();
        let deadline = me.state.before_read(&me.timeouts, now);
        // Bytes that have arrived are taken even past the deadline (a process resumed after a
        // pause finds whole requests waiting); the deadline is enforced when nothing is there.
        let before = buf.filled().len();
        match Pin::new(me.stream()?).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() == before {
                    me.eof = true;
                } else {
                    me.state.after_read(now);
                }
                return Poll::Ready(Ok(()));
            }
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => {}
        }
        let Some((at, head)) = deadline else {
            return Poll::Pending;
        };
        if me.read_timer_at != Some(at) {
            me.read_timer.as_mut().reset(at);
            me.read_timer_at = Some(at);
        }
        if me.read_timer.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        me.expired = true;
        if head {
            me.head_timed_out();
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.write_some(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        // The first non-empty slice decides whether this is hyper's automatic error; its head
        // is always one slice.
        let first = bufs
            .iter()
            .find(|b| !b.is_empty())
            .map_or(&[][..], |b| &b[..]);
        if self.swallow || self.replacing.is_some() || automatic_error(first).is_some() {
            let total = bufs.iter().map(|b| b.len()).sum::<usize>();
            return match self.write_some(cx, first) {
                Poll::Ready(Ok(_)) => Poll::Ready(Ok(total)),
                other => other,
            };
        }
        self.clean = false;
        let me = &mut *self;
        match Pin::new(me.stream()?).poll_write_vectored(cx, bufs) {
            Poll::Pending => me.stalled(cx),
            done => {
                me.write_stalled = false;
                done
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.as_ref().is_some_and(|s| s.is_write_vectored())
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let flushed = Pin::new(self.stream()?).poll_flush(cx);
        if let Poll::Ready(Ok(())) = flushed {
            self.clean = true;
        }
        flushed
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.stream()?).poll_shutdown(cx)
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        let (Some(stream), permit) = (self.inner.take(), self.permit.take()) else {
            return;
        };
        if self.eof {
            return;
        }
        // The peer may still be sending (a body nobody read, a head that timed out): drain it
        // for a moment so that closing does not reset the connection under the answer.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(linger(stream, permit));
        }
    }
}

/// Sends FIN, then reads and drops what the peer still sends, up to [`LINGER`] and
/// [`LINGER_MAX_BYTES`].
async fn linger(mut stream: TcpStream, permit: Option<Slot>) {
    let _ = stream.shutdown().await;
    let deadline = Instant::now() + LINGER;
    let mut buf = vec![0u8; 16 * 1024];
    let mut drained = 0usize;
    while drained < LINGER_MAX_BYTES {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => drained += n,
            _ => break,
        }
    }
    drop(permit);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves hyper's automatic answers (a 4xx head without a content type) are recognised and
    /// nothing the service writes is: JSON errors, `/metrics` text, 1xx, 2xx, partial heads.
    #[test]
    fn only_automatic_errors_are_replaced() {
        let auto = b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        assert_eq!(automatic_error(auto), Some(414));
        assert_eq!(
            automatic_error(b"HTTP/1.1 431 Request Header Fields Too Large\r\n\r\n"),
            Some(431)
        );
        for service in [
            &b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"[..],
            b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n\r\n",
            b"HTTP/1.1 100 Continue\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 414 URI Too Long\r\ncontent-len",
            b"{\"error\":\"HTTP/1.1 400 \\r\\n\\r\\n\"}",
        ] {
            assert_eq!(automatic_error(service), None, "{}", String::from_utf8_lossy(service));
        }
        let r = String::from_utf8(replacement(414, 8192)).expect("utf8");
        assert!(r.starts_with("HTTP/1.1 414 URI Too Long\r\ncontent-type: application/json\r\n"));
        let body: serde_json::Value =
            serde_json::from_str(r.split("\r\n\r\n").nth(1).expect("body")).expect("json");
        assert_eq!(body["error"], "uri_too_long");
    }

    /// Proves the phases: a new connection owes a head by the header timeout; a finished
    /// request leaves it idle (idle timeout) until bytes of the next head arrive; a busy
    /// request has no connection deadline (the body timeout is the request's).
    #[test]
    fn phases_pick_the_deadline() {
        let t = Timeouts {
            header_read: Duration::from_secs(1),
            body_read: Duration::from_secs(2),
            idle: Duration::from_secs(3),
        };
        let s = ConnState::new();
        let now = Instant::now();
        let (at, head) = s.before_read(&t, now).expect("head due");
        assert!(head && at <= now + t.header_read);
        s.busy();
        assert_eq!(s.before_read(&t, now), None);
        s.done();
        assert_eq!(s.before_read(&t, now), Some((now + t.idle, false)));
        let later = now + Duration::from_millis(10);
        s.after_read(later);
        assert_eq!(
            s.before_read(&t, later),
            Some((later + t.header_read, true))
        );
    }
}
