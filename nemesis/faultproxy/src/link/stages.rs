//! The TCP toxics as stages of one direction of one connection, with Toxiproxy's semantics
//! (its `toxics/*.go`), computed in virtual time: a stage does not sleep, it sets how long each
//! piece is held (`ready`), and the direction writes every piece in order once it is ready.
//! Toxiproxy runs its stages as a pipeline of goroutines; holding pieces reproduces its timing
//! (a latency counts from when the data was read, queued data does not add up).
//!
//! The end of a direction is a piece too: it passes a stage after the data before it, so data
//! in flight is delivered (after its delay) before a close is passed on.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::set::{below, roll, End, Piece, SharedRng, ToxicRt};
use crate::api::ToxicKind;

/// One toxic on one direction of one connection.
#[derive(Debug)]
pub struct Stage {
    /// The toxic (and revision) this stage runs.
    pub rt: Arc<ToxicRt>,
    /// Whether the toxicity roll for this connection chose the toxic (else it is a noop).
    pub active: bool,
    /// The latest `ready` this stage let out: it never reorders.
    last: Instant,
    /// `timeout`: when the connection closes unless more data arrives.
    deadline: Option<Instant>,
    /// `limit_data`: bytes passed so far (kept when the toxic is updated, as in Toxiproxy).
    transmitted: u64,
    /// Whether this stage let the end out (later pieces are dropped).
    ended: bool,
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

impl Stage {
    /// Starts `rt` on a connection at `now`, rolling its toxicity.
    pub fn new(rt: Arc<ToxicRt>, rng: &SharedRng, now: Instant) -> Stage {
        let mut s = Stage {
            active: false,
            last: now,
            deadline: None,
            transmitted: 0,
            ended: false,
            rt: rt.clone(),
        };
        s.revise(rt, rng, now);
        s
    }

    /// Runs a new revision of the toxic: rolls again, restarts its timer; the bytes counted by
    /// `limit_data` stay.
    pub fn revise(&mut self, rt: Arc<ToxicRt>, rng: &SharedRng, now: Instant) {
        self.active = roll(rng, rt.toxic.toxicity);
        self.deadline = match rt.toxic.kind {
            ToxicKind::Timeout { timeout } if self.active && timeout > 0 && !self.ended => {
                Some(now + ms(timeout))
            }
            _ => None,
        };
        self.rt = rt;
    }

    /// When this stage closes the connection if nothing else happens (`timeout`).
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Whether this stage holds data back in time (removing it releases what it holds).
    pub fn delays(&self) -> bool {
        self.active
            && matches!(
                self.rt.toxic.kind,
                ToxicKind::Latency { .. }
                    | ToxicKind::Bandwidth { .. }
                    | ToxicKind::Slicer { .. }
                    | ToxicKind::SlowClose { .. }
            )
    }

    /// Whether removing this stage closes the connection: Toxiproxy's `timeout` closes the
    /// links it ran on when it is removed (the stream lost bytes; it cannot go on).
    pub fn closes_on_removal(&self) -> bool {
        self.active && !self.ended && matches!(self.rt.toxic.kind, ToxicKind::Timeout { .. })
    }

    fn pass(&mut self, mut p: Piece, out: &mut Vec<Piece>) {
        p.hold_until(self.last);
        self.last = p.ready();
        if matches!(p, Piece::End { .. }) {
            self.ended = true;
        }
        out.push(p);
    }

    /// Runs one piece through this stage at `now`, appending what comes out to `out`.
    pub fn apply(&mut self, p: Piece, now: Instant, rng: &SharedRng, out: &mut Vec<Piece>) {
        if self.ended {
            return;
        }
        if !self.active {
            return self.pass(p, out);
        }
        match self.rt.toxic.kind.clone() {
            ToxicKind::Latency { latency, jitter } => self.latency(p, latency, jitter, rng, out),
            ToxicKind::Timeout { timeout } => match p {
                // Dropped; each drop restarts the close timer (Toxiproxy's loop does).
                Piece::Data { ready, .. } => {
                    if timeout > 0 {
                        self.deadline = Some(ready.max(now) + ms(timeout));
                    }
                }
                end @ Piece::End { .. } => {
                    self.deadline = None;
                    self.pass(end, out);
                }
            },
            ToxicKind::ResetPeer { timeout } => {
                // The first data or end: wait, then reset (the data is dropped).
                let at = p.ready().max(self.last) + ms(timeout);
                self.pass(Piece::end(End::Reset, at), out);
            }
            ToxicKind::Bandwidth { rate } => self.bandwidth(p, rate, out),
            ToxicKind::SlowClose { delay } => {
                let mut p = p;
                if matches!(p, Piece::End { .. }) {
                    p.hold_until(p.ready().max(self.last) + ms(delay));
                }
                self.pass(p, out);
            }
            ToxicKind::LimitData { bytes } => self.limit(p, bytes, out),
            ToxicKind::Slicer {
                average_size,
                size_variation,
                delay,
            } => self.slicer(p, (average_size, size_variation), delay, rng, out),
            ToxicKind::Noop | ToxicKind::Http(_) => self.pass(p, out),
        }
    }

    fn latency(
        &mut self,
        p: Piece,
        latency: u64,
        jitter: u64,
        rng: &SharedRng,
        out: &mut Vec<Piece>,
    ) {
        match p {
            Piece::Data { data, at, ready } => {
                // latency ± jitter; a negative delay is none (Toxiproxy sleeps a negative time).
                let j = i128::from(jitter);
                let offset = i128::from(below(rng, jitter.saturating_mul(2))) - j;
                let delay = u64::try_from((i128::from(latency) + offset).max(0)).unwrap_or(0);
                let due = ready.max(at + ms(delay));
                // The chunk's timestamp moves to when it leaves, as Toxiproxy's does.
                self.pass(
                    Piece::Data {
                        data,
                        at: due,
                        ready: due,
                    },
                    out,
                );
            }
            end => self.pass(end, out),
        }
    }

    fn bandwidth(&mut self, p: Piece, rate: u64, out: &mut Vec<Piece>) {
        let Piece::Data { data, at, ready } = p else {
            return self.pass(p, out);
        };
        if rate == 0 {
            return self.pass(Piece::Data { data, at, ready }, out);
        }
        // At most 100 ms worth per write, each written once its time at `rate` KB/s (bytes
        // per ms) has passed.
        let slice = usize::try_from(rate.saturating_mul(100)).unwrap_or(usize::MAX);
        let mut start = 0;
        while start < data.len() {
            let end = data.len().min(start.saturating_add(slice));
            let len = (end - start) as u64;
            let begin = ready.max(self.last);
            let due = begin + Duration::from_micros(len.saturating_mul(1000) / rate);
            self.pass(
                Piece::Data {
                    data: data.slice(start..end),
                    at,
                    ready: due,
                },
                out,
            );
            start = end;
        }
    }

    fn limit(&mut self, p: Piece, bytes: u64, out: &mut Vec<Piece>) {
        let Piece::Data { data, at, ready } = p else {
            return self.pass(p, out);
        };
        let remaining = bytes.saturating_sub(self.transmitted);
        let take = usize::try_from(remaining)
            .unwrap_or(usize::MAX)
            .min(data.len());
        if take > 0 {
            self.transmitted = self.transmitted.saturating_add(take as u64);
            self.pass(
                Piece::Data {
                    data: data.slice(..take),
                    at,
                    ready,
                },
                out,
            );
        }
        if self.transmitted >= bytes {
            self.pass(Piece::end(End::Close, ready), out);
        }
    }

    fn slicer(
        &mut self,
        p: Piece,
        (average, variation): (u64, u64),
        delay_us: u64,
        rng: &SharedRng,
        out: &mut Vec<Piece>,
    ) {
        let Piece::Data { data, at, ready } = p else {
            return self.pass(p, out);
        };
        let mut cuts = Vec::new();
        slice_offsets(0, data.len() as u64, average, variation, rng, &mut cuts);
        let step = Duration::from_micros(delay_us);
        let begin = ready.max(self.last);
        let mut due = begin;
        for w in cuts.windows(2) {
            let (a, b) = (w[0] as usize, w[1] as usize);
            self.pass(
                Piece::Data {
                    data: data.slice(a..b),
                    at,
                    ready: due,
                },
                out,
            );
            due += step;
        }
        // Toxiproxy sleeps `delay` after every slice, the last one too.
        self.last = due;
    }
}

/// Toxiproxy's slicer cuts: split in about two (± `variation`) until a piece is within
/// `variation` of `average`. Pushes the offsets, first and last included.
fn slice_offsets(
    start: u64,
    end: u64,
    average: u64,
    variation: u64,
    rng: &SharedRng,
    cuts: &mut Vec<u64>,
) {
    if cuts.is_empty() {
        cuts.push(start);
    }
    if end.saturating_sub(start) <= average.saturating_add(variation) {
        if end > start {
            cuts.push(end);
        }
        return;
    }
    // The API guarantees variation < average, so both halves are at least 1 byte long.
    assert!(variation < average, "slicer variation checked by the API");
    let offset = i128::from(below(rng, variation.saturating_mul(2))) - i128::from(variation);
    let half = i128::from(start + (end - start) / 2);
    let mid = u64::try_from(half + offset)
        .unwrap_or(start + 1)
        .clamp(start + 1, end - 1);
    slice_offsets(start, mid, average, variation, rng, cuts);
    slice_offsets(mid, end, average, variation, rng, cuts);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Stream, Toxic};
    use crate::link::set::HttpCounters;
    use rand::SeedableRng;
    use std::sync::Mutex;

    fn stage(kind: ToxicKind) -> (Stage, SharedRng) {
        let rng = Arc::new(Mutex::new(rand_chacha::ChaCha8Rng::seed_from_u64(1)));
        let rt = Arc::new(ToxicRt {
            toxic: Toxic::new(kind, Stream::Downstream),
            revision: 1,
            counters: Arc::new(Mutex::new(HttpCounters::default())),
        });
        (Stage::new(rt, &rng, Instant::now()), rng)
    }

    /// Proves the slicer cuts every byte exactly once into slices near the average size.
    #[test]
    fn slicer_cuts_cover_the_chunk() {
        let (_, rng) = stage(ToxicKind::Noop);
        for len in [1u64, 7, 100, 4096, 32 * 1024] {
            let mut cuts = Vec::new();
            slice_offsets(0, len, 10, 3, &rng, &mut cuts);
            assert_eq!((cuts[0], *cuts.last().expect("last")), (0, len));
            assert!(
                cuts.windows(2).all(|w| w[0] < w[1] && w[1] - w[0] <= 13),
                "{cuts:?}"
            );
        }
    }

    /// Proves limit_data passes exactly its bytes and then closes, and latency holds data and
    /// passes the end after it without delaying the end itself.
    #[test]
    fn limit_and_latency_pieces() {
        let now = Instant::now();
        let (mut s, rng) = stage(ToxicKind::LimitData { bytes: 5 });
        let mut out = Vec::new();
        s.apply(
            Piece::data(bytes::Bytes::from_static(b"abc"), now),
            now,
            &rng,
            &mut out,
        );
        s.apply(
            Piece::data(bytes::Bytes::from_static(b"defg"), now),
            now,
            &rng,
            &mut out,
        );
        s.apply(
            Piece::data(bytes::Bytes::from_static(b"h"), now),
            now,
            &rng,
            &mut out,
        );
        let got: Vec<String> = out
            .iter()
            .map(|p| match p {
                Piece::Data { data, .. } => String::from_utf8_lossy(data).into_owned(),
                Piece::End { end, .. } => format!("{end:?}"),
            })
            .collect();
        assert_eq!(got, ["abc", "de", "Close"]);
        let (mut s, rng) = stage(ToxicKind::Latency {
            latency: 300,
            jitter: 0,
        });
        let mut out = Vec::new();
        s.apply(
            Piece::data(bytes::Bytes::from_static(b"x"), now),
            now,
            &rng,
            &mut out,
        );
        s.apply(Piece::end(End::Eof, now), now, &rng, &mut out);
        assert_eq!(out[0].ready(), now + ms(300));
        assert_eq!(
            out[1].ready(),
            now + ms(300),
            "the end follows the data, no later"
        );
    }
}
