//! # pipeline
//!
//! The system under test: an order/payment pipeline coordinated by a saga. One binary,
//! `pipeline`, runs one role per process: `order` (accepts orders, drives sagas) and
//! `payment` (charges and refunds under idempotency keys).
//!
//! Every role serves `/health` and `/metrics` (Prometheus text format), answers bad input with a
//! 4xx JSON error that changes nothing, and acknowledges only what is durably on disk.

pub mod cli;
pub mod client;
pub mod db;
pub mod http;
pub mod ids;
pub mod roles;
pub mod telemetry;
