//! # faultproxy
//!
//! A TCP fault proxy speaking Toxiproxy's REST API, so Toxiproxy's own clients drive it
//! unchanged, with Toxiproxy's TCP toxics (latency, timeout, reset_peer, bandwidth, slow_close,
//! limit_data, slicer, noop) and an HTTP-aware one beyond them: `http` matches HTTP/1.1 requests
//! on a link by method and path prefix and drops, delays, answers or resets only the matching
//! exchanges (docs/contracts.md §7).
//!
//! Without its default `server` feature the crate is only [`api`], the wire shapes, which the
//! nemesis's typed client links. With it: [`Server`] (the REST API, [`registry`] of proxies), the
//! accept side of a proxy ([`listener`]), one proxied connection ([`link`]: two directions, each
//! a chain of toxic stages, closes and half-closes passed on only after the data before them),
//! and the HTTP/1.1 framing the `http` toxic acts on ([`http`]).
//!
//! A toxic never loses data it was not asked to drop: data in flight when a side closes is
//! delivered (after its delay) before the close is passed on, and a half-close (FIN) on one side
//! is passed to the other as a half-close.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let server = faultproxy::Server::start("127.0.0.1:0".parse().unwrap(), 7).await?;
//! println!("Toxiproxy API at {}", server.url());
//! server.shutdown().await;
//! # Ok(()) }
//! ```

pub mod api;

#[cfg(feature = "server")]
pub mod http;
#[cfg(feature = "server")]
pub mod link;
#[cfg(feature = "server")]
pub mod listener;
#[cfg(feature = "server")]
pub mod registry;
#[cfg(feature = "server")]
pub mod routes;
#[cfg(feature = "server")]
mod server;

#[cfg(feature = "server")]
pub use server::Server;
