//! What a proxy's connections share: its toxics as published by the registry (a new
//! [`ToxicSet`] on every change, watched by every connection), the per-toxic counters of the
//! `http` toxics, and the seeded RNG.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::api::{HttpToxic, Stream, Toxic, ToxicKind};

/// The proxy server's seeded RNG (jitter, slicer sizes, toxicity rolls).
pub type SharedRng = Arc<Mutex<ChaCha8Rng>>;

/// Whether a roll with probability `p` succeeds.
pub fn roll(rng: &SharedRng, p: f32) -> bool {
    if p >= 1.0 {
        return true;
    }
    if p <= 0.0 {
        return false;
    }
    rng.lock().map(|mut r| r.gen::<f32>() < p).unwrap_or(true)
}

/// A uniform integer in `0..n` (0 when `n` is 0).
pub fn below(rng: &SharedRng, n: u64) -> u64 {
    if n == 0 {
        return 0;
    }
    rng.lock().map(|mut r| r.gen_range(0..n)).unwrap_or(0)
}

/// Matches and hits of one `http` toxic over all the proxy's connections.
#[derive(Debug, Default)]
pub struct HttpCounters {
    /// Requests that matched.
    pub matched: u64,
    /// Exchanges hit.
    pub hits: u64,
}

/// One toxic as the data path sees it.
#[derive(Debug)]
pub struct ToxicRt {
    /// The toxic.
    pub toxic: Toxic,
    /// Changes on every update (a connection re-rolls the toxicity of a revised toxic, as
    /// Toxiproxy restarts it).
    pub revision: u64,
    /// Shared by all revisions of an `http` toxic.
    pub counters: Arc<Mutex<HttpCounters>>,
}

impl ToxicRt {
    /// The `http` attributes, for an `http` toxic.
    pub fn http(&self) -> Option<&HttpToxic> {
        match &self.toxic.kind {
            ToxicKind::Http(h) => Some(h),
            _ => None,
        }
    }
}

/// A proxy's toxics, split the way the data path uses them.
#[derive(Debug, Default)]
pub struct ToxicSet {
    /// TCP toxics on client → server data, in creation order.
    pub upstream: Vec<Arc<ToxicRt>>,
    /// TCP toxics on server → client data, in creation order.
    pub downstream: Vec<Arc<ToxicRt>>,
    /// `http` toxics, in creation order.
    pub http: Vec<Arc<ToxicRt>>,
}

impl ToxicSet {
    /// Splits `toxics`.
    pub fn new(toxics: &[Arc<ToxicRt>]) -> ToxicSet {
        let mut set = ToxicSet::default();
        for t in toxics {
            match (&t.toxic.kind, t.toxic.stream) {
                (ToxicKind::Http(_), _) => set.http.push(t.clone()),
                (_, Stream::Upstream) => set.upstream.push(t.clone()),
                (_, Stream::Downstream) => set.downstream.push(t.clone()),
            }
        }
        set
    }

    /// The TCP chain of one direction.
    pub fn chain(&self, dir: Stream) -> &[Arc<ToxicRt>] {
        match dir {
            Stream::Upstream => &self.upstream,
            Stream::Downstream => &self.downstream,
        }
    }
}

/// How a direction ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The source closed (FIN): half-close the destination.
    Eof,
    /// A toxic closes the whole connection (FIN to both sides).
    Close,
    /// The connection is reset (RST to both sides).
    Reset,
}

/// A piece of one direction's stream on its way through the toxics: data read at `at`, or the
/// end; neither leaves the proxy before `ready`.
#[derive(Debug, Clone)]
pub enum Piece {
    /// Bytes.
    Data {
        /// The bytes.
        data: Bytes,
        /// When they were read (or last delayed: Toxiproxy's chunk timestamp).
        at: Instant,
        /// Earliest time they may be written.
        ready: Instant,
    },
    /// The end of the direction.
    End {
        /// How it ends.
        end: End,
        /// Earliest time it may be passed on.
        ready: Instant,
    },
}

impl Piece {
    /// Bytes read at `at`, ready at once.
    pub fn data(data: Bytes, at: Instant) -> Piece {
        Piece::Data {
            data,
            at,
            ready: at,
        }
    }

    /// An end, ready at `ready`.
    pub fn end(end: End, ready: Instant) -> Piece {
        Piece::End { end, ready }
    }

    /// When it may leave.
    pub fn ready(&self) -> Instant {
        match self {
            Piece::Data { ready, .. } | Piece::End { ready, .. } => *ready,
        }
    }

    /// Holds it at least until `t`.
    pub fn hold_until(&mut self, t: Instant) {
        match self {
            Piece::Data { ready, .. } | Piece::End { ready, .. } => *ready = (*ready).max(t),
        }
    }

    /// Lets it leave no later than `t`.
    pub fn release_by(&mut self, t: Instant) {
        match self {
            Piece::Data { ready, .. } | Piece::End { ready, .. } => *ready = (*ready).min(t),
        }
    }
}
