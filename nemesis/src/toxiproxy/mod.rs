//! Toxiproxy's API: its shapes ([`api`]) and a typed async client ([`client`]).

pub mod api;
pub mod client;

pub use api::{NewProxy, Proxy, ProxyUpdate, Stream, Toxic, ToxicKind, ToxicUpdate};
pub use client::{ClientError, ToxiproxyClient};
