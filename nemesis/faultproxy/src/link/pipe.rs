//! One direction of one connection: what the source sent goes through the HTTP side, then the
//! direction's TCP toxic stages, and is written in order once ready. The end of the source
//! (FIN) is passed on as a half-close after the data before it.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{mpsc, watch};
use tokio::time::sleep_until;

use super::set::{End, Piece, SharedRng, ToxicSet};
use super::stages::Stage;
use crate::api::Stream;
use crate::http::request::RequestSide;
use crate::http::response::ResponseSide;
use crate::http::HttpConn;

/// The write half of a destination. Dropping it does not half-close the socket (tokio's write
/// half would): a connection that ends with a reset must not send a FIN first. The half-close
/// of a finished direction is explicit.
pub struct Writer(Option<OwnedWriteHalf>);

impl Writer {
    /// Wraps a write half.
    pub fn new(w: OwnedWriteHalf) -> Writer {
        Writer(Some(w))
    }

    async fn write_all(&mut self, data: &[u8]) -> std::io::Result<()> {
        match &mut self.0 {
            Some(w) => w.write_all(data).await,
            None => Err(std::io::ErrorKind::NotConnected.into()),
        }
    }

    async fn half_close(&mut self) {
        if let Some(w) = &mut self.0 {
            let _ = w.shutdown().await;
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if let Some(w) = self.0.take() {
            w.forget();
        }
    }
}

/// What the reader of a source passes on.
#[derive(Debug)]
pub enum Item {
    /// Bytes, read at the instant.
    Data(Bytes, Instant),
    /// The source closed its side.
    Eof,
    /// Reading failed (a reset, typically).
    Error,
}

/// How a direction finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipeEnd {
    /// The end was passed on (or the destination is gone): the other direction goes on.
    Finished,
    /// Close the whole connection.
    Close,
    /// Reset the whole connection.
    Reset,
}

/// The HTTP side of a direction.
#[derive(Debug)]
pub enum Side {
    /// Client → server.
    Request(RequestSide),
    /// Server → client.
    Response(ResponseSide),
}

/// One direction.
pub struct Pipe {
    pub(super) dir: Stream,
    pub(super) rx: mpsc::Receiver<Item>,
    pub(super) out: Writer,
    pub(super) set: watch::Receiver<Arc<ToxicSet>>,
    pub(super) set_open: bool,
    pub(super) stages: Vec<Stage>,
    pub(super) rng: SharedRng,
    pub(super) side: Side,
    pub(super) conn: Arc<HttpConn>,
}

enum Event {
    Changed(bool),
    Deadline,
    Answers,
    Item(Option<Item>),
}

async fn until(t: Option<Instant>) {
    match t {
        Some(t) => sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}

/// What a change of the toxics means for a connection.
struct Resync {
    /// A removed toxic closes the connection.
    close: bool,
    /// A removed toxic held data: release what is held.
    release: bool,
}

impl Pipe {
    fn deadline(&self) -> Option<Instant> {
        self.stages.iter().filter_map(Stage::deadline).min()
    }

    /// Brings the stages in line with the proxy's current toxics.
    fn resync(&mut self) -> Resync {
        let set = self.set.borrow_and_update().clone();
        let now = Instant::now();
        let mut old = std::mem::take(&mut self.stages);
        for rt in set.chain(self.dir) {
            let stage = match old.iter().position(|s| s.rt.toxic.name == rt.toxic.name) {
                Some(i) => {
                    let mut s = old.remove(i);
                    if s.rt.revision != rt.revision {
                        s.revise(rt.clone(), &self.rng, now);
                    }
                    s
                }
                None => Stage::new(rt.clone(), &self.rng, now),
            };
            self.stages.push(stage);
        }
        Resync {
            close: old.iter().any(Stage::closes_on_removal),
            release: old.iter().any(Stage::delays),
        }
    }

    /// Runs `pieces` through the TCP stages.
    fn through_stages(&mut self, mut pieces: Vec<Piece>) -> Vec<Piece> {
        let now = Instant::now();
        for stage in &mut self.stages {
            let mut next = Vec::with_capacity(pieces.len());
            for p in pieces {
                stage.apply(p, now, &self.rng, &mut next);
            }
            pieces = next;
        }
        pieces
    }

    async fn next_event(&mut self) -> Event {
        let deadline = self.deadline();
        let answers = matches!(self.side, Side::Response(_));
        tokio::select! {
            biased;
            r = self.set.changed(), if self.set_open => Event::Changed(r.is_ok()),
            _ = until(deadline) => Event::Deadline,
            _ = self.conn.answers.notified(), if answers => Event::Answers,
            item = self.rx.recv() => Event::Item(item),
        }
    }

    /// Runs the direction until it ends.
    pub async fn run(mut self) -> PipeEnd {
        self.resync();
        loop {
            let pieces = match self.next_event().await {
                Event::Changed(open) => {
                    self.set_open = open;
                    if open && self.resync().close {
                        return PipeEnd::Close;
                    }
                    continue;
                }
                Event::Deadline => return PipeEnd::Close,
                Event::Answers => match &mut self.side {
                    Side::Response(r) => r.answers(Instant::now()),
                    Side::Request(_) => continue,
                },
                Event::Item(Some(Item::Data(data, at))) => {
                    let http = self.set.borrow().http.clone();
                    match &mut self.side {
                        Side::Request(r) => r.on_data(data, at, &http, &self.rng),
                        Side::Response(r) => r.on_data(data, at),
                    }
                }
                Event::Item(None | Some(Item::Eof)) => {
                    let now = Instant::now();
                    match &mut self.side {
                        Side::Request(r) => {
                            let mut p = r.on_eof(now);
                            p.push(Piece::end(End::Eof, now));
                            p
                        }
                        Side::Response(r) => r.on_eof(now),
                    }
                }
                Event::Item(Some(Item::Error)) => vec![Piece::end(End::Reset, Instant::now())],
            };
            let pieces = self.through_stages(pieces);
            if let Some(end) = self.deliver(pieces).await {
                return end;
            }
        }
    }

    /// Writes `pieces` in order, each once it is ready; `Some` when the direction ended.
    async fn deliver(&mut self, mut pieces: Vec<Piece>) -> Option<PipeEnd> {
        let mut i = 0;
        while i < pieces.len() {
            let ready = pieces[i].ready();
            if ready > Instant::now() {
                let deadline = self.deadline();
                let ev = tokio::select! {
                    biased;
                    r = self.set.changed(), if self.set_open => Event::Changed(r.is_ok()),
                    _ = until(deadline) => Event::Deadline,
                    _ = sleep_until(ready.into()) => Event::Item(None),
                };
                match ev {
                    Event::Changed(open) => {
                        self.set_open = open;
                        if open {
                            let r = self.resync();
                            if r.close {
                                return Some(PipeEnd::Close);
                            }
                            if r.release {
                                let now = Instant::now();
                                pieces[i..].iter_mut().for_each(|p| p.release_by(now));
                            }
                        }
                        continue;
                    }
                    Event::Deadline => return Some(PipeEnd::Close),
                    _ => {}
                }
            }
            match &pieces[i] {
                Piece::Data { data, .. } => {
                    let deadline = self.deadline();
                    let written = tokio::select! {
                        r = self.out.write_all(data) => r.is_ok(),
                        _ = until(deadline) => return Some(PipeEnd::Close),
                    };
                    if !written {
                        return Some(PipeEnd::Finished);
                    }
                }
                Piece::End { end: End::Eof, .. } => {
                    self.out.half_close().await;
                    return Some(PipeEnd::Finished);
                }
                Piece::End {
                    end: End::Close, ..
                } => return Some(PipeEnd::Close),
                Piece::End {
                    end: End::Reset, ..
                } => return Some(PipeEnd::Reset),
            }
            i += 1;
        }
        None
    }
}
