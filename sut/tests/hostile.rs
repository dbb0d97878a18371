//! Hostile input and hostile peers (issue 18), against real `pipeline` processes on loopback:
//! `connections` (slow bodies and heads, silent, idle and surplus connections), `errors` (one
//! JSON error shape on every path) and `auth` (the cluster secret on every route but the public
//! ones, and its rotation on a running cluster).

#[path = "api/cluster.rs"]
mod cluster;

#[path = "hostile/auth.rs"]
mod auth;
#[path = "hostile/connections.rs"]
mod connections;
#[path = "hostile/errors.rs"]
mod errors;
#[path = "hostile/raw.rs"]
mod raw;
#[path = "hostile/state.rs"]
mod state;
