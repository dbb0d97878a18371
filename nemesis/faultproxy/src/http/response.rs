//! The server → client side: follows responses, matches each to its exchange and carries out
//! the exchange's plan (drop, delay, reset), and puts the proxy's own answers in their place in
//! the response order.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::parse::{parse_response, BodyReader, HeadReader, NotHttp, ResponseKind};
use super::{HttpConn, Plan};
use crate::link::set::{End, Piece};

#[derive(Debug)]
enum State {
    /// Between responses.
    Idle,
    /// Reading a head of the response to `method` (`None`: unsolicited).
    Head {
        head: HeadReader,
        method: Option<String>,
    },
    /// Reading a body; `solicited` when it completes an exchange.
    Body { body: BodyReader, solicited: bool },
    /// Not HTTP (any more): pass everything.
    Opaque,
    /// A response was dropped: nothing more reaches the client (a hanging connection).
    Hanging,
}

/// The response side of one connection.
#[derive(Debug)]
pub struct ResponseSide {
    conn: Arc<HttpConn>,
    state: State,
    /// The plan of the response being read.
    plan: Plan,
    /// No byte of the current response leaves before this (`delay`).
    hold: Option<Instant>,
}

impl ResponseSide {
    /// The response side of a new connection.
    pub fn new(conn: Arc<HttpConn>) -> ResponseSide {
        ResponseSide {
            conn,
            state: State::Idle,
            plan: Plan::Pass,
            hold: None,
        }
    }

    /// The proxy's answers that are due now (at a response boundary), as pieces at `at`.
    pub fn answers(&mut self, at: Instant) -> Vec<Piece> {
        if !matches!(self.state, State::Idle) {
            return Vec::new();
        }
        self.conn
            .take_answers()
            .into_iter()
            .map(|b| Piece::data(b, at))
            .collect()
    }

    fn emit(&self, out: &mut Vec<Piece>, data: Bytes, at: Instant) {
        if data.is_empty() {
            return;
        }
        match self.plan {
            Plan::Drop => {}
            _ => {
                let mut p = Piece::data(data, at);
                if let Some(h) = self.hold {
                    p.hold_until(h);
                }
                out.push(p);
            }
        }
    }

    fn opaque(&mut self, why: &NotHttp) {
        self.conn.make_opaque(&why.0);
        self.state = State::Opaque;
        self.plan = Plan::Pass;
    }

    /// Takes bytes read from the server at `at`; returns what goes on towards the client.
    pub fn on_data(&mut self, data: Bytes, at: Instant) -> Vec<Piece> {
        let mut out = Vec::new();
        let mut off = 0;
        while off < data.len() {
            if self.conn.opaque() && !matches!(self.state, State::Hanging) {
                self.state = State::Opaque;
                self.plan = Plan::Pass;
            }
            let rest = data.slice(off..);
            match &mut self.state {
                State::Hanging => break,
                State::Opaque => {
                    self.emit(&mut out, rest, at);
                    break;
                }
                State::Idle => {
                    out.extend(self.answers(at));
                    let front = self.conn.front();
                    self.plan = front.as_ref().map_or(Plan::Pass, |e| e.plan.clone());
                    self.hold = match self.plan {
                        Plan::Delay(d) => Some(at + d),
                        _ => None,
                    };
                    if self.plan == Plan::Reset {
                        out.push(Piece::end(End::Reset, at));
                        self.state = State::Hanging;
                        break;
                    }
                    self.state = State::Head {
                        head: HeadReader::default(),
                        method: front.map(|e| e.method),
                    };
                }
                State::Head { .. } => match self.feed_head(&rest, at, &mut out) {
                    Some(used) => off += used,
                    None => break,
                },
                State::Body { body, .. } => {
                    let used = match body.feed(&rest) {
                        Ok(n) => n,
                        Err(e) => {
                            self.emit(&mut out, rest, at);
                            self.opaque(&e);
                            break;
                        }
                    };
                    let done = body.done();
                    self.emit(&mut out, rest.slice(..used), at);
                    off += used;
                    if done {
                        self.response_complete();
                        out.extend(self.answers(at));
                    }
                }
            }
        }
        out
    }

    /// Takes head bytes; `None` when the rest of the read is done with (opaque now).
    fn feed_head(&mut self, rest: &Bytes, at: Instant, out: &mut Vec<Piece>) -> Option<usize> {
        let State::Head { head, method } = &mut self.state else {
            return None;
        };
        let (used, done) = match head.feed(rest) {
            Ok(r) => r,
            Err(e) => {
                self.emit(out, rest.clone(), at);
                self.opaque(&e);
                return None;
            }
        };
        let method = method.clone();
        let parsed = done.then(|| parse_response(head.bytes(), method.as_deref()));
        self.emit(out, rest.slice(..used), at);
        match parsed {
            None => {}
            Some(Err(e)) => self.opaque(&e),
            Some(Ok((_, ResponseKind::Interim))) => {
                self.state = State::Head {
                    head: HeadReader::default(),
                    method,
                };
            }
            Some(Ok((_, ResponseKind::Switch))) => {
                self.opaque(&NotHttp("protocol switched".into()))
            }
            Some(Ok((_, ResponseKind::Final(body)))) => {
                let body = BodyReader::new(body);
                let done = body.done();
                self.state = State::Body {
                    body,
                    solicited: method.is_some(),
                };
                if done {
                    self.response_complete();
                    out.extend(self.answers(at));
                }
            }
        }
        Some(used)
    }

    fn response_complete(&mut self) {
        if let State::Body {
            solicited: true, ..
        } = self.state
        {
            self.conn.pop();
        }
        self.state = if self.plan == Plan::Drop {
            State::Hanging
        } else {
            State::Idle
        };
    }

    /// The server closed its side: a body read until the close is complete; the close goes
    /// on (after what is held), also from a hanging connection.
    pub fn on_eof(&mut self, at: Instant) -> Vec<Piece> {
        let mut out = Vec::new();
        if matches!(self.state, State::Idle) {
            out.extend(self.answers(at));
        }
        let mut end = Piece::end(End::Eof, at);
        if let Some(h) = self.hold {
            end.hold_until(h);
        }
        out.push(end);
        out
    }
}
