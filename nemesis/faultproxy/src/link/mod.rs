//! One proxied connection: a client accepted by the proxy's listener and its connection to the
//! upstream, with one [`pipe::Pipe`] per direction. A direction whose source closes passes the
//! close on as a half-close once the data before it is delivered; the connection ends when both
//! directions have, or at once when a toxic closes or resets it (then both sockets get a FIN, or
//! an RST).

pub mod pipe;
pub mod set;
pub mod stages;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::api::Stream;
use crate::http::request::RequestSide;
use crate::http::response::ResponseSide;
use crate::http::HttpConn;
use pipe::{Item, Pipe, PipeEnd, Side, Writer};
use set::{SharedRng, ToxicSet};

/// Read buffer per direction (Toxiproxy's io.Copy size).
pub const READ_BYTES: usize = 32 * 1024;
/// Chunks read ahead of the toxics per direction (Toxiproxy's latency buffer is 1024 chunks);
/// past it the reader waits, and TCP flow control slows the sender.
pub const READ_AHEAD_CHUNKS: usize = 256;
/// How long connecting to the upstream may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What a connection needs from its proxy.
#[derive(Clone)]
pub struct LinkCtx {
    /// Where to connect (`host:port`, resolved on every connection).
    pub upstream: String,
    /// The proxy's toxics.
    pub toxics: watch::Receiver<Arc<ToxicSet>>,
    /// The seeded RNG.
    pub rng: SharedRng,
}

async fn read_loop(mut r: OwnedReadHalf, tx: mpsc::Sender<Item>) {
    let mut buf = vec![0u8; READ_BYTES];
    loop {
        let item = match r.read(&mut buf).await {
            Ok(0) => Item::Eof,
            Ok(n) => Item::Data(bytes::Bytes::copy_from_slice(&buf[..n]), Instant::now()),
            Err(_) => Item::Error,
        };
        let last = !matches!(item, Item::Data(..));
        if tx.send(item).await.is_err() || last {
            return;
        }
    }
}

/// A socket with a second handle kept to close or reset it while its halves are in use.
struct Sock {
    stream: TcpStream,
    ctl: std::net::TcpStream,
}

fn sock(s: TcpStream) -> std::io::Result<Sock> {
    let _ = s.set_nodelay(true);
    let std = s.into_std()?;
    let ctl = std.try_clone()?;
    Ok(Sock {
        stream: TcpStream::from_std(std)?,
        ctl,
    })
}

fn end_with(ctls: &[std::net::TcpStream], end: PipeEnd) {
    for c in ctls {
        match end {
            // SO_LINGER 0: the close sends RST, as a crashed peer's kernel would.
            PipeEnd::Reset => {
                let _ = socket2::SockRef::from(c).set_linger(Some(Duration::ZERO));
            }
            PipeEnd::Close => {
                let _ = c.shutdown(std::net::Shutdown::Both);
            }
            PipeEnd::Finished => {}
        }
    }
}

/// Proxies `client` to the upstream until the connection ends.
pub async fn serve(client: TcpStream, ctx: LinkCtx) {
    let upstream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&ctx.upstream))
        .await
    {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(upstream = %ctx.upstream, error = %e, "upstream refused; closing the client");
            return;
        }
        Err(_) => return,
    };
    let (Ok(client), Ok(upstream)) = (sock(client), sock(upstream)) else {
        return;
    };
    let ctls = [client.ctl, upstream.ctl];
    let (cr, cw) = client.stream.into_split();
    let (ur, uw) = upstream.stream.into_split();
    let conn = Arc::new(HttpConn::default());
    let mut readers = JoinSet::new();
    let mut pipes = JoinSet::new();
    for (dir, r, w) in [(Stream::Upstream, cr, uw), (Stream::Downstream, ur, cw)] {
        let (tx, rx) = mpsc::channel(READ_AHEAD_CHUNKS);
        readers.spawn(read_loop(r, tx));
        let side = match dir {
            Stream::Upstream => Side::Request(RequestSide::new(conn.clone())),
            Stream::Downstream => Side::Response(ResponseSide::new(conn.clone())),
        };
        let pipe = Pipe {
            dir,
            rx,
            out: Writer::new(w),
            set: ctx.toxics.clone(),
            set_open: true,
            stages: Vec::new(),
            rng: ctx.rng.clone(),
            side,
            conn: conn.clone(),
        };
        pipes.spawn(pipe.run());
    }
    while let Some(done) = pipes.join_next().await {
        let end = done.unwrap_or(PipeEnd::Close);
        if end != PipeEnd::Finished {
            end_with(&ctls, end);
            break;
        }
    }
    // Dropping the sets aborts what still runs; the last handle closes each socket.
    drop(pipes);
    drop(readers);
}
