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
