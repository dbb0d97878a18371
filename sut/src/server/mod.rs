//! The HTTP server of every role: its own accept loop over hyper's HTTP/1 connection builder
//! (axum's `serve` has no header-read timeout), with
//!
//! - a cap on open connections (`max_connections`, above the in-flight request limit so that
//!   `/health` and `/metrics`, which skip that limit, find room); beyond it a new connection is
//!   closed at once and counted in `connections_refused_total`;
//! - per connection ([`conn`]): header-read, keep-alive idle and write-stall timeouts, JSON in
//!   place of hyper's automatic error answers, a lingering close;
//! - per request ([`request`]): the URI limit, the cluster secret, the body read under a size
//!   limit and a timeout before the in-flight limit, one JSON error shape.
//!
//! SIGTERM or SIGINT stops accepting, lets open requests finish for [`SHUTDOWN_GRACE`], then
//! returns.

pub mod conn;
pub mod request;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use self::conn::{ConnState, Guarded, Slot, Timeouts};
use self::request::{Shared, MAX_URI_BYTES};
use crate::auth::ClusterSecret;
use crate::config::Settings;

/// How long open requests get to finish after SIGTERM.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// Pause after a failed accept (out of file descriptors, say) before the next.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);
/// The largest request head hyper takes (431 JSON beyond it); above hyper's own 65,534-byte
/// limit on the request target, so that a target too long for it is a 414, not a 431.
pub const MAX_HEAD_BYTES: usize = 128 * 1024;
/// Least in-flight requests and connections of a store replica: every service process of
/// every node keeps a pool of connections to it.
const STORE_MIN_IN_FLIGHT: usize = 1024;
const STORE_MIN_CONNECTIONS: usize = 4096;

/// What a role's server enforces.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Requests served at once (beyond: 503 `overloaded` with `x-do-not-retry`).
    pub max_in_flight: usize,
    /// Connections open at once (beyond: closed at once).
    pub max_connections: usize,
    /// Largest body of an authenticated request.
    pub max_body_bytes: usize,
    /// The connection timeouts.
    pub timeouts: Timeouts,
}

impl Limits {
    /// The limits `settings` give a service role.
    pub fn from_settings(settings: &Settings) -> Limits {
        Limits {
            max_in_flight: settings.max_in_flight_requests,
            max_connections: settings.max_connections,
            max_body_bytes: settings.max_body_bytes,
            timeouts: Timeouts {
                header_read: settings.header_read_timeout(),
                body_read: settings.body_read_timeout(),
                idle: settings.idle_timeout(),
            },
        }
    }

    /// The limits of a store replica: at least [`STORE_MIN_IN_FLIGHT`] requests and
    /// [`STORE_MIN_CONNECTIONS`] connections.
    pub fn for_store(settings: &Settings) -> Limits {
        let mut l = Limits::from_settings(settings);
        l.max_in_flight = l.max_in_flight.max(STORE_MIN_IN_FLIGHT);
        l.max_connections = l.max_connections.max(STORE_MIN_CONNECTIONS);
        l
    }
}

/// Raises the soft limit on open files to the hard limit, so that the connection cap, not
/// the default of 1024 descriptors, bounds connections. Returns the soft limit in force.
fn raise_open_files_limit() -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => hard,
            Err(_) => soft,
        },
        Ok((soft, _)) => soft,
        Err(_) => 0,
    }
}

/// Binds `addr` and serves `app` under `limits` and `secret` until SIGTERM or SIGINT.
pub async fn serve(
    addr: SocketAddr,
    app: Router,
    limits: Limits,
    secret: ClusterSecret,
) -> anyhow::Result<()> {
    let open_files = raise_open_files_limit();
    if open_files != 0 && open_files < limits.max_connections as u64 + 64 {
        tracing::warn!(
            open_files,
            max_connections = limits.max_connections,
            "the open-files limit is below the connection cap"
        );
    }
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    tracing::info!(%addr, "listening");
    serve_on(listener, app, limits, secret, shutdown_signal()).await;
    Ok(())
}

/// Serves `app` on `listener` until `shutdown` completes, then gives open requests
/// [`SHUTDOWN_GRACE`] to finish.
pub async fn serve_on(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    secret: ClusterSecret,
    shutdown: impl Future<Output = ()>,
) {
    let shared = Arc::new(Shared {
        router: app,
        secret,
        in_flight: Arc::new(Semaphore::new(limits.max_in_flight)),
        max_in_flight: limits.max_in_flight,
        max_body_bytes: limits.max_body_bytes,
        body_read_timeout: limits.timeouts.body_read,
    });
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.keep_alive(true)
        .header_read_timeout(None)
        .max_header_size(MAX_HEAD_BYTES)
        .max_buf_size(MAX_HEAD_BYTES);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    metrics::counter!("connections_refused_total").increment(0);
    metrics::gauge!("connections_open").set(0.0);
    tokio::pin!(shutdown);
    loop {
        let (stream, _peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(ACCEPT_RETRY).await;
                    continue;
                }
            },
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            metrics::counter!("connections_refused_total").increment(1);
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let state = ConnState::new();
        let io = Guarded::new(
            stream,
            state.clone(),
            limits.timeouts,
            MAX_URI_BYTES,
            Slot::new(permit),
        );
        let shared = shared.clone();
        let service = hyper::service::service_fn(move |req| {
            let (shared, state) = (shared.clone(), state.clone());
            async move { Ok::<_, Infallible>(request::handle(shared, state, req).await) }
        });
        let served = graceful.watch(http.serve_connection(TokioIo::new(io), service));
        tokio::spawn(async move {
            if let Err(e) = served.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still open after the shutdown grace; leaving them");
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("shutting down");
}
