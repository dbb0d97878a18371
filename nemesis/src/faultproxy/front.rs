//! The listening side of a proxy: accepts clients on the proxy's public address and pipes them to
//! the noxious engine. It owns the client sockets, which is what `enabled: false` (close every
//! connection, refuse new ones) and the `reset_peer` toxic (close with TCP RST) need. It also
//! applies `bandwidth`: noxious 1.0.4's bandwidth toxic splits chunks larger than rate × 100
//! bytes into 100-byte pieces and then underflows a `Duration` (a panic that kills the link).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::toxiproxy::api::{Stream, Toxic, ToxicKind};

/// Open connections per proxy; a client past it is closed at once.
pub const MAX_CONNECTIONS: usize = 4096;
/// Read buffer per direction of a connection (Toxiproxy's io.Copy size).
const BUF_BYTES: usize = 32 * 1024;

/// A running front.
pub struct Front {
    /// The bound public address.
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// The toxics of a proxy that the front applies (`reset_peer`, `bandwidth`), shared with its
/// connections.
pub type Resets = watch::Receiver<Vec<Toxic>>;

/// Whether the front (not noxious) applies this toxic.
pub fn applies(t: &Toxic) -> bool {
    matches!(
        t.kind,
        ToxicKind::ResetPeer { .. } | ToxicKind::Bandwidth { .. }
    )
}

/// Listen backlog of a front.
const BACKLOG: i32 = 1024;

/// A bound, non-listening socket that keeps a disabled proxy's port: connections to it are
/// refused (RST), as with Toxiproxy's closed listener, but no other process's automatic port
/// choice can take the port while the proxy is disabled.
pub struct Parked(Socket);

fn bound(addr: SocketAddr) -> std::io::Result<Socket> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    s.bind(&addr.into())?;
    Ok(s)
}

impl Parked {
    /// Parks `addr`.
    pub fn at(addr: SocketAddr) -> std::io::Result<Parked> {
        bound(addr).map(Parked)
    }
}

impl Front {
    /// Listens on `listen` (on the parked socket if given) and starts accepting, piping each
    /// client to `engine`.
    pub async fn start(
        listen: SocketAddr,
        parked: Option<Parked>,
        engine: SocketAddr,
        resets: Resets,
        rng: Arc<Mutex<ChaCha8Rng>>,
    ) -> std::io::Result<Front> {
        let socket = match parked {
            Some(Parked(s)) => s,
            None => bound(listen)?,
        };
        socket.listen(BACKLOG)?;
        socket.set_nonblocking(true)?;
        let listener = TcpListener::from_std(std::net::TcpListener::from(socket))?;
        let addr = listener.local_addr()?;
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, engine, resets, rng, stop_rx));
        Ok(Front { addr, stop, task })
    }

    /// Closes the listener and every connection, waits until they are closed, and parks the
    /// port.
    pub async fn stop(self) -> Option<Parked> {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        match Parked::at(self.addr) {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::warn!(addr = %self.addr, error = %e, "could not park the port");
                None
            }
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    engine: SocketAddr,
    resets: Resets,
    rng: Arc<Mutex<ChaCha8Rng>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut conns = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => break,
        };
        while conns.try_join_next().is_some() {}
        let Ok((client, _)) = accepted else { continue };
        if conns.len() >= MAX_CONNECTIONS {
            tracing::warn!(%engine, "connection limit reached; closing a new client");
            continue;
        }
        conns.spawn(serve(client, engine, resets.clone(), rng.clone()));
    }
    // Aborting drops every connection's sockets: clients see the close at once. The listener
    // closes last, right before the caller parks its port.
    conns.shutdown().await;
    drop(listener);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Closed,
    Reset,
}

async fn serve(
    mut client: TcpStream,
    engine: SocketAddr,
    resets: Resets,
    rng: Arc<Mutex<ChaCha8Rng>>,
) {
    let Ok(mut upstream) = TcpStream::connect(engine).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let reset = {
        let (mut cr, mut cw) = client.split();
        let (mut ur, mut uw) = upstream.split();
        let up = pump(&mut cr, &mut uw, Stream::Upstream, &resets, &rng);
        let down = pump(&mut ur, &mut cw, Stream::Downstream, &resets, &rng);
        tokio::pin!(up, down);
        let (mut up_done, mut down_done) = (false, false);
        loop {
            let outcome = tokio::select! {
                o = &mut up, if !up_done => { up_done = true; o }
                o = &mut down, if !down_done => { down_done = true; o }
            };
            if outcome == Outcome::Reset {
                break true;
            }
            if up_done && down_done {
                break false;
            }
        }
    };
    if reset {
        // SO_LINGER 0: the close sends RST instead of FIN, as a crashed peer's kernel would.
        let _ = client.set_zero_linger();
    }
}

fn reset_rule(resets: &Resets, dir: Stream) -> Option<(u64, f32)> {
    resets
        .borrow()
        .iter()
        .filter(|t| t.stream == dir)
        .find_map(|t| match t.kind {
            ToxicKind::ResetPeer { timeout } => Some((timeout, t.toxicity)),
            _ => None,
        })
}

fn bandwidth_rule(resets: &Resets, dir: Stream) -> Option<(u64, f32)> {
    resets
        .borrow()
        .iter()
        .filter(|t| t.stream == dir)
        .find_map(|t| match t.kind {
            ToxicKind::Bandwidth { rate } if rate > 0 => Some((rate, t.toxicity)),
            _ => None,
        })
}

/// Writes `data` at `rate_kbps` (Toxiproxy's KB/s: `rate` bytes per millisecond), in slices of
/// at most 100 ms worth each.
async fn write_paced<W: AsyncWrite + Unpin>(w: &mut W, data: &[u8], rate_kbps: u64) -> bool {
    let slice_bytes = usize::try_from(rate_kbps.saturating_mul(100)).unwrap_or(usize::MAX);
    for slice in data.chunks(slice_bytes.max(1)) {
        let wait_us = (slice.len() as u64).saturating_mul(1000) / rate_kbps;
        tokio::time::sleep(Duration::from_micros(wait_us)).await;
        if w.write_all(slice).await.is_err() {
            return false;
        }
    }
    true
}

fn roll(rng: &Mutex<ChaCha8Rng>, toxicity: f32) -> bool {
    if toxicity >= 1.0 {
        return true;
    }
    rng.lock()
        .map(|mut r| r.gen::<f32>() < toxicity)
        .unwrap_or(true)
}

/// Copies one direction until EOF; a `reset_peer` toxic on this direction swallows the next
/// chunk, waits its timeout and ends the connection with a reset; a `bandwidth` toxic paces it.
async fn pump<R, W>(
    r: &mut R,
    w: &mut W,
    dir: Stream,
    resets: &Resets,
    rng: &Mutex<ChaCha8Rng>,
) -> Outcome
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; BUF_BYTES];
    loop {
        let n = match r.read(&mut buf).await {
            Ok(0) | Err(_) => {
                let _ = w.shutdown().await;
                return Outcome::Closed;
            }
            Ok(n) => n,
        };
        if let Some((timeout_ms, toxicity)) = reset_rule(resets, dir) {
            if roll(rng, toxicity) {
                tokio::time::sleep(Duration::from_millis(timeout_ms)).await;
                return Outcome::Reset;
            }
        }
        let written = match bandwidth_rule(resets, dir) {
            Some((rate, toxicity)) if roll(rng, toxicity) => write_paced(w, &buf[..n], rate).await,
            _ => w.write_all(&buf[..n]).await.is_ok(),
        };
        if !written {
            return Outcome::Closed;
        }
    }
}
