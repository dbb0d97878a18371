//! Integration tests of the nemesis crate: the `faultproxy` server through its API and real TCP
//! traffic, the typed client, faults against real processes and network namespaces, and
//! schedules.

#[path = "nemesis/support.rs"]
mod support;

#[cfg(feature = "toxiproxy-compat")]
#[path = "nemesis/compat.rs"]
mod compat;
#[path = "nemesis/ctl.rs"]
mod ctl;
#[path = "nemesis/faultproxy_api.rs"]
mod faultproxy_api;
#[path = "nemesis/faults.rs"]
mod faults;
#[path = "nemesis/netns.rs"]
mod netns;
#[path = "nemesis/toxics.rs"]
mod toxics;
