//! # pipeline
//!
//! The system under test: an order/payment saga pipeline. One binary, `pipeline`, runs one role
//! per process: `store` (a replica of the versioned, fenced key-value store every other role
//! keeps its state in), `order` (accepts orders, its elected leader drives the sagas),
//! `payment` (charges and refunds, elected leader), `inventory` (stock, leader-based or
//! eventual) and `shipping` (shipments).
//!
//! Every role serves `/health` and `/metrics` (Prometheus text format), answers bad input with a
//! 4xx JSON error that changes nothing, requires the cluster secret ([`auth`]) on every route
//! but the public order API, health and metrics, bounds its connections and their timeouts
//! ([`server`]), and acknowledges only what a write quorum of store replicas has fsynced.
//!
//! ```no_run
//! # async fn demo() {
//! use pipeline::config::QuorumSpec;
//! use pipeline::quorum::{replicas::Replicas, Quorum, WriteOutcome};
//! let replicas = Replicas::new(
//!     vec![("n1".into(), "http://127.0.0.1:7101".into())],
//!     std::time::Duration::from_secs(1),
//! );
//! let spec = QuorumSpec { n: 1, r: 1, w: 1, eventual: false };
//! let q = Quorum::new(&replicas, spec, "order", "order", 0);
//! if let WriteOutcome::Ok(version) = q.write(1, vec![("k".into(), serde_json::json!(1))]).await {
//!     println!("stored as {version}");
//! }
//! # }
//! ```

pub mod auth;
pub mod budget;
pub mod cli;
pub mod client;
pub mod config;
pub mod http;
pub mod ids;
pub mod lease;
pub mod limits;
pub mod memory;
pub mod quorum;
pub mod rng;
pub mod roles;
pub mod server;
pub mod store;
pub mod telemetry;
