//! Integration tests of the nemesis crate: the typed Toxiproxy client against a `faultproxy`,
//! faults against real processes, proxies and network namespaces, and schedules. (The proxy's
//! own tests live with it, in `nemesis/faultproxy/tests/`.)

#[path = "nemesis/support.rs"]
mod support;

#[path = "nemesis/ctl.rs"]
mod ctl;
#[path = "nemesis/faults.rs"]
mod faults;
#[path = "nemesis/netns.rs"]
mod netns;
