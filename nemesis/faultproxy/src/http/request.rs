//! The client → server side: follows requests, decides for each which `http` toxic (if any)
//! hits it, and withholds the requests a `status` toxic answers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::parse::{
    parse_request, plausible_request, BodyReader, HeadReader, NotHttp, RequestHead,
};
use super::{Exchange, HttpConn, Plan};
use crate::api::{HttpAction, HttpToxic};
use crate::link::set::{roll, Piece, SharedRng, ToxicRt};

#[derive(Debug)]
enum State {
    /// Reading a head; `held` when it is withheld until complete (a `status` toxic may answer
    /// it), else its bytes are forwarded as they come.
    Head { head: HeadReader, held: bool },
    /// Reading a body; `swallow` when the request is answered by the proxy.
    Body { body: BodyReader, swallow: bool },
    /// Not HTTP (any more): pass everything.
    Opaque,
}

/// The request side of one connection.
#[derive(Debug)]
pub struct RequestSide {
    conn: Arc<HttpConn>,
    state: State,
}

/// The JSON body of an answer: `{"error", "message"}` like every error of the pipeline.
fn answer(status: u16, toxic: &str, head: &RequestHead) -> Bytes {
    let reason = axum::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Injected");
    let body = serde_json::json!({
        "error": "injected",
        "message": format!("faultproxy toxic '{toxic}' answered {status} to {} {}", head.method, head.path),
    })
    .to_string();
    Bytes::from(format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nx-faultproxy-toxic: {toxic}\r\n\r\n{body}",
        body.len()
    ))
}

/// The plan for a request: the first `http` toxic (in creation order) that matches, selects and
/// rolls it. Every matching toxic counts the request. A `status` toxic can only answer a request
/// whose head was withheld.
fn decide(toxics: &[Arc<ToxicRt>], head: &RequestHead, held: bool, rng: &SharedRng) -> Plan {
    let mut plan = Plan::Pass;
    for rt in toxics {
        let Some(h) = rt.http() else { continue };
        if !h.matches(&head.method, &head.path) || (h.action == HttpAction::Status && !held) {
            continue;
        }
        let mut c = rt.counters.lock().unwrap_or_else(|p| p.into_inner());
        c.matched = c.matched.saturating_add(1);
        if plan != Plan::Pass || !h.selects(c.matched, c.hits) || !roll(rng, rt.toxic.toxicity) {
            continue;
        }
        c.hits = c.hits.saturating_add(1);
        plan = plan_of(h, &rt.toxic.name, head);
    }
    plan
}

fn plan_of(h: &HttpToxic, name: &str, head: &RequestHead) -> Plan {
    match h.action {
        HttpAction::DropResponse => Plan::Drop,
        HttpAction::Delay => Plan::Delay(Duration::from_millis(h.delay_ms)),
        HttpAction::Reset => Plan::Reset,
        HttpAction::Status => Plan::Answer {
            bytes: answer(h.status, name, head),
            complete: false,
        },
    }
}

impl RequestSide {
    /// The request side of a new connection.
    pub fn new(conn: Arc<HttpConn>) -> RequestSide {
        RequestSide {
            conn,
            state: State::Head {
                head: HeadReader::default(),
                held: false,
            },
        }
    }

    fn opaque(&mut self, why: &NotHttp) {
        self.conn.make_opaque(&why.0);
        self.state = State::Opaque;
    }

    /// Takes bytes read from the client at `at`; returns what goes on towards the server.
    pub fn on_data(
        &mut self,
        data: Bytes,
        at: Instant,
        toxics: &[Arc<ToxicRt>],
        rng: &SharedRng,
    ) -> Vec<Piece> {
        let mut out = Vec::new();
        let mut off = 0;
        while off < data.len() {
            if self.conn.opaque() {
                self.state = State::Opaque;
            }
            let rest = data.slice(off..);
            match &mut self.state {
                State::Opaque => {
                    out.push(Piece::data(rest, at));
                    break;
                }
                State::Head { head, held } => {
                    if head.is_empty() {
                        // Withhold heads only while a `status` toxic could answer them.
                        *held = toxics
                            .iter()
                            .filter_map(|t| t.http())
                            .any(|h| h.action == HttpAction::Status);
                    }
                    let held = *held;
                    let (used, done) = match head.feed(&rest) {
                        Ok(r) => r,
                        Err(e) => {
                            let pending = Bytes::copy_from_slice(head.bytes());
                            if held {
                                out.push(Piece::data(pending, at));
                            }
                            out.push(Piece::data(rest, at));
                            self.opaque(&e);
                            break;
                        }
                    };
                    if !held {
                        out.push(Piece::data(rest.slice(..used), at));
                    }
                    off += used;
                    if !plausible_request(head.bytes()) {
                        if held {
                            out.push(Piece::data(Bytes::copy_from_slice(head.bytes()), at));
                        }
                        let rest = data.slice(off..);
                        if !rest.is_empty() {
                            out.push(Piece::data(rest, at));
                        }
                        self.opaque(&NotHttp("not an HTTP/1.1 request".into()));
                        break;
                    }
                    if done {
                        self.head_complete(at, toxics, rng, &mut out);
                    }
                }
                State::Body { body, swallow } => {
                    let used = match body.feed(&rest) {
                        Ok(n) => n,
                        Err(e) => {
                            out.push(Piece::data(rest, at));
                            self.opaque(&e);
                            break;
                        }
                    };
                    if !*swallow && used > 0 {
                        out.push(Piece::data(rest.slice(..used), at));
                    }
                    off += used;
                    if body.done() {
                        self.body_complete();
                    }
                }
            }
        }
        out
    }

    fn head_complete(
        &mut self,
        at: Instant,
        toxics: &[Arc<ToxicRt>],
        rng: &SharedRng,
        out: &mut Vec<Piece>,
    ) {
        let State::Head { head, held } = std::mem::replace(&mut self.state, State::Opaque) else {
            unreachable!("called in the head state");
        };
        let bytes = head.bytes();
        let req = match parse_request(bytes) {
            Ok(r) => r,
            Err(e) => {
                if held {
                    out.push(Piece::data(Bytes::copy_from_slice(bytes), at));
                }
                return self.opaque(&e);
            }
        };
        let plan = decide(toxics, &req, held, rng);
        let swallow = matches!(plan, Plan::Answer { .. });
        if held && !swallow {
            out.push(Piece::data(Bytes::copy_from_slice(bytes), at));
        }
        let pushed = self.conn.push(Exchange {
            method: req.method.clone(),
            plan,
        });
        if !pushed || (req.switches && !swallow) {
            // What follows a protocol switch may not be HTTP: stop following.
            self.conn
                .make_opaque("too many requests in flight, or a protocol switch");
            self.state = State::Opaque;
            return;
        }
        let body = BodyReader::new(req.body);
        let done = body.done();
        self.state = State::Body { body, swallow };
        if done {
            self.body_complete();
        }
    }

    fn body_complete(&mut self) {
        if let State::Body { swallow: true, .. } = self.state {
            self.conn.complete_answer();
        }
        self.state = State::Head {
            head: HeadReader::default(),
            held: false,
        };
    }

    /// The client closed its side: what was withheld of an incomplete head goes on.
    pub fn on_eof(&mut self, at: Instant) -> Vec<Piece> {
        match &self.state {
            State::Head { head, held: true } if !head.is_empty() => {
                vec![Piece::data(Bytes::copy_from_slice(head.bytes()), at)]
            }
            _ => Vec::new(),
        }
    }
}
