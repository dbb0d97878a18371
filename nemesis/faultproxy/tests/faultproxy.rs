//! Integration tests of the fault proxy: its REST API (Toxiproxy conformance and its own rules),
//! every toxic on real loopback TCP traffic, closes and half-closes, the `http` toxic on real
//! HTTP/1.1 exchanges, and (with `--features toxiproxy-compat`) a Toxiproxy client driving the
//! binary.

#[path = "faultproxy/support.rs"]
mod support;

#[path = "faultproxy/api.rs"]
mod api;
#[path = "faultproxy/close.rs"]
mod close;
#[cfg(feature = "toxiproxy-compat")]
#[path = "faultproxy/compat.rs"]
mod compat;
#[path = "faultproxy/conformance.rs"]
mod conformance;
#[path = "faultproxy/http.rs"]
mod http;
#[path = "faultproxy/toxics.rs"]
mod toxics;
