//! The listening side of a proxy: accepts clients on the proxy's address and runs a
//! [`crate::link`] for each. Stopping it (`enabled: false`, delete) closes every connection and
//! parks the port: bound but not listening, so connections are refused (as by Toxiproxy's closed
//! listener) while no other process's automatic port choice can take it.

use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::link::{serve, LinkCtx};

/// Open connections per proxy; a client past it is closed at once.
pub const MAX_CONNECTIONS: usize = 4096;
/// Listen backlog of a proxy.
const BACKLOG: i32 = 1024;

/// A bound, non-listening socket that keeps a disabled proxy's port.
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

/// A running listener.
pub struct Front {
    /// The bound address.
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Front {
    /// Listens on `listen` (on the parked socket if given) and starts accepting.
    pub fn start(
        listen: SocketAddr,
        parked: Option<Parked>,
        ctx: LinkCtx,
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
        let task = tokio::spawn(accept_loop(listener, ctx, stop_rx));
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

async fn accept_loop(listener: TcpListener, ctx: LinkCtx, mut stop: watch::Receiver<bool>) {
    let mut conns = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => break,
        };
        while conns.try_join_next().is_some() {}
        let Ok((client, _)) = accepted else { continue };
        if conns.len() >= MAX_CONNECTIONS {
            tracing::warn!(upstream = %ctx.upstream, "connection limit reached; closing a new client");
            continue;
        }
        conns.spawn(serve(client, ctx.clone()));
    }
    // Aborting drops every connection's sockets: clients see the close at once. The listener
    // closes last, right before the caller parks its port.
    conns.shutdown().await;
    drop(listener);
}
