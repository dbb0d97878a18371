//! The HTTP side of a connection: HTTP/1.1 framing ([`parse`]) followed on both directions of
//! every connection from its first byte, so an `http` toxic added later acts on pooled
//! keep-alive connections too; the exchanges in flight ([`HttpConn`]); and the two sides that
//! decide and carry out a toxic's action ([`request::RequestSide`], [`response::ResponseSide`]).
//!
//! A connection whose bytes are not HTTP/1.1 (or that switches protocols) becomes opaque: its
//! bytes pass unchanged and `http` toxics no longer act on it. Bytes of exchanges no toxic hits
//! are forwarded as they were read, never rewritten.

pub mod parse;
pub mod request;
pub mod response;

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;

/// Requests a connection may have in flight before it is treated as opaque.
pub const MAX_PENDING_EXCHANGES: usize = 256;

/// What happens to one exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Nothing.
    Pass,
    /// The response is held this long from its first byte.
    Delay(Duration),
    /// The response is swallowed and the connection left hanging.
    Drop,
    /// The connection is reset when the response starts.
    Reset,
    /// The request was not forwarded; this is answered instead once the request is complete.
    Answer {
        /// The whole response.
        bytes: Bytes,
        /// Whether the request (with its body) has been read.
        complete: bool,
    },
}

/// One request in flight.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// Its method (framing of the response depends on `HEAD` and `CONNECT`).
    pub method: String,
    /// What happens to it.
    pub plan: Plan,
}

#[derive(Debug, Default)]
struct State {
    opaque: bool,
    queue: VecDeque<Exchange>,
}

/// The exchanges of one connection, shared by its two directions.
#[derive(Debug, Default)]
pub struct HttpConn {
    state: Mutex<State>,
    /// Signalled when an answer is complete (the response side may have nothing else to
    /// wake it).
    pub answers: Notify,
}

impl HttpConn {
    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let mut g = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g)
    }

    /// Whether the connection stopped being HTTP.
    pub fn opaque(&self) -> bool {
        self.with(|s| s.opaque)
    }

    /// Marks the connection opaque (both directions pass bytes unchanged from now on).
    pub fn make_opaque(&self, why: &str) {
        tracing::debug!(why, "connection is no longer followed as HTTP");
        self.with(|s| {
            s.opaque = true;
            s.queue.clear();
        });
    }

    /// Adds a request; false (and the connection becomes opaque) past the bound.
    fn push(&self, e: Exchange) -> bool {
        let full = self.with(|s| {
            if s.queue.len() >= MAX_PENDING_EXCHANGES {
                return true;
            }
            s.queue.push_back(e);
            false
        });
        if full {
            self.make_opaque("too many requests in flight");
        }
        !full
    }

    /// Marks the newest answer complete.
    fn complete_answer(&self) {
        self.with(|s| {
            if let Some(Exchange {
                plan: Plan::Answer { complete, .. },
                ..
            }) = s
                .queue
                .iter_mut()
                .rev()
                .find(|e| matches!(e.plan, Plan::Answer { .. }))
            {
                *complete = true;
            }
        });
        self.answers.notify_one();
    }

    /// Takes the complete answers at the front of the queue.
    fn take_answers(&self) -> Vec<Bytes> {
        self.with(|s| {
            let mut out = Vec::new();
            while let Some(Exchange {
                plan:
                    Plan::Answer {
                        bytes,
                        complete: true,
                    },
                ..
            }) = s.queue.front()
            {
                out.push(bytes.clone());
                s.queue.pop_front();
            }
            out
        })
    }

    /// The exchange the next response from the server answers: the first one the server saw
    /// (`None`: an unsolicited response, or the front is an answer still being read).
    fn front(&self) -> Option<Exchange> {
        self.with(|s| {
            s.queue
                .front()
                .filter(|e| !matches!(e.plan, Plan::Answer { .. }))
                .cloned()
        })
    }

    /// Removes the exchange a final response completed.
    fn pop(&self) {
        self.with(|s| {
            s.queue.pop_front();
        });
    }
}

#[cfg(test)]
mod tests {
    use super::request::RequestSide;
    use super::response::ResponseSide;
    use super::*;
    use crate::api::{HttpAction, HttpToxic, Stream, Toxic, ToxicKind};
    use crate::link::set::{HttpCounters, Piece, SharedRng, ToxicRt};
    use rand::SeedableRng;
    use std::sync::Arc;
    use std::time::Instant;

    const REQUESTS: &[u8] = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\ncontent-length: 3\r\n\r\nabcPOST /c?q HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\nHEAD /d HTTP/1.1\r\n\r\n";
    const RESPONSES: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\naHTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1\r\nz\r\n0\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 99\r\n\r\n";

    fn bytes(pieces: Vec<Piece>) -> Vec<u8> {
        pieces
            .into_iter()
            .filter_map(|p| match p {
                Piece::Data { data, .. } => Some(data.to_vec()),
                Piece::End { .. } => None,
            })
            .flatten()
            .collect()
    }

    fn toxics(action: HttpAction, path: &str) -> Vec<Arc<ToxicRt>> {
        let h = HttpToxic {
            path: path.into(),
            action,
            ..HttpToxic::default()
        };
        vec![Arc::new(ToxicRt {
            toxic: Toxic::new(ToxicKind::Http(h), Stream::Downstream),
            revision: 1,
            counters: Arc::new(Mutex::new(HttpCounters::default())),
        })]
    }

    /// Proves requests and responses no toxic hits pass unchanged whatever the read
    /// boundaries (also while heads are withheld for a `status` toxic), and every exchange is
    /// matched to its response (HEAD and 204 without a body, 1xx before the final one).
    #[test]
    fn unmatched_exchanges_pass_unchanged_at_any_split() {
        let rng: SharedRng = Arc::new(Mutex::new(rand_chacha::ChaCha8Rng::seed_from_u64(3)));
        let now = Instant::now();
        for set in [Vec::new(), toxics(HttpAction::Status, "/zzz")] {
            for split in 1..REQUESTS.len() {
                let conn = Arc::new(HttpConn::default());
                let mut req = RequestSide::new(conn.clone());
                let mut up = Vec::new();
                for part in [&REQUESTS[..split], &REQUESTS[split..]] {
                    up.extend(bytes(req.on_data(
                        Bytes::copy_from_slice(part),
                        now,
                        &set,
                        &rng,
                    )));
                }
                assert_eq!(up, REQUESTS, "split {split}");
                assert!(!conn.opaque());
                let rsplit = split % RESPONSES.len();
                let mut resp = ResponseSide::new(conn.clone());
                let mut down = Vec::new();
                for part in [&RESPONSES[..rsplit], &RESPONSES[rsplit..]] {
                    down.extend(bytes(resp.on_data(Bytes::copy_from_slice(part), now)));
                }
                assert_eq!(down, RESPONSES, "split {rsplit}");
                assert!(conn.with(|s| s.queue.is_empty()), "every exchange answered");
            }
        }
    }

    /// Proves a dropped response is swallowed whole and nothing after it reaches the client,
    /// while the request went through, and that bytes that are not HTTP pass unchanged.
    #[test]
    fn drop_swallows_and_non_http_passes() {
        let rng: SharedRng = Arc::new(Mutex::new(rand_chacha::ChaCha8Rng::seed_from_u64(3)));
        let now = Instant::now();
        let set = toxics(HttpAction::DropResponse, "/b");
        let conn = Arc::new(HttpConn::default());
        let mut req = RequestSide::new(conn.clone());
        let up = bytes(req.on_data(Bytes::from_static(REQUESTS), now, &set, &rng));
        assert_eq!(up, REQUESTS);
        let mut resp = ResponseSide::new(conn.clone());
        let down = bytes(resp.on_data(Bytes::from_static(RESPONSES), now));
        let first = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\na";
        assert_eq!(down, first, "only the response before the dropped one");
        let conn = Arc::new(HttpConn::default());
        let mut req = RequestSide::new(conn.clone());
        let tls = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03";
        let up = bytes(req.on_data(Bytes::from_static(tls), now, &set, &rng));
        assert_eq!(up, tls);
        assert!(conn.opaque());
    }
}
