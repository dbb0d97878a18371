//! Toxiproxy's API: its shapes ([`api`], from the `faultproxy` crate, which serves them) and a
//! typed async client ([`client`]).

pub use faultproxy::api;
pub mod client;

pub use api::{
    HttpAction, HttpToxic, NewProxy, Proxy, ProxyUpdate, Stream, Toxic, ToxicKind, ToxicUpdate,
};
pub use client::{ClientError, ToxiproxyClient};
