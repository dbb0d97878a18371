//! Integration tests of the pipeline: real `pipeline` processes on loopback, talking HTTP, with
//! real fsync and real SIGKILL. `store` covers the replicas, quorum client, leases and fencing
//! (issue 3); `pipeline` covers the saga roles, `effects` single effects under idempotency
//! keys, and `inventory` its two consistency models (issue 4); `leases` covers elections that
//! cannot be split or poisoned and bounded tokens (issue 15); `one_effect` one key, one effect
//! across nodes for every effect, and `bounds` the bounded arithmetic (issue 14); `intake` order
//! intake on every node and the counters the alerting rules use (issue 16); `archive` settled
//! reservations leaving the SKU record (issue 18's soak).

#[path = "api/archive.rs"]
mod archive;
#[path = "api/bounds.rs"]
mod bounds;
#[path = "api/cluster.rs"]
mod cluster;
#[path = "api/effects.rs"]
mod effects;
#[path = "api/electors.rs"]
mod electors;
#[path = "api/intake.rs"]
mod intake;
#[path = "api/inventory.rs"]
mod inventory;
#[path = "api/leases.rs"]
mod leases;
#[path = "api/one_effect.rs"]
mod one_effect;
#[path = "api/pipeline.rs"]
mod pipeline;
#[path = "api/store.rs"]
mod store;
