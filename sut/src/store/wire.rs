//! What store replicas and their clients exchange over HTTP.
//!
//! Routes (all JSON; errors are `{"error", "message"}`, a fenced write adds `current_token`):
//! - `POST /kv/{domain}/write` [`WriteBody`] → [`WriteReply`] (409 `fenced`)
//! - `POST /kv/{domain}/read` [`ReadBody`] → [`ReadReply`]
//! - `POST /kv/{domain}/repair` [`RepairBody`] → [`RepairReply`]
//! - `GET /kv/{domain}/scan?prefix=&after=&limit=` → [`ScanReply`]
//! - `GET /lease/{domain}` → [`LeaseState`]
//! - `POST /lease/{domain}/{acquire|renew|release}` [`LeaseBody`] → [`LeaseReply`]

use serde::{Deserialize, Serialize};

/// Store domains: each has its own fencing token and its own records.
pub const DOMAINS: &[&str] = &["order", "payment", "inventory", "shipping"];

/// Longest key accepted.
pub const MAX_KEY_BYTES: usize = 512;
/// Most entries in one write, keys in one read, records in one repair.
pub const MAX_BATCH_ENTRIES: usize = 64;
/// Most records one scan page returns.
pub const MAX_SCAN_LIMIT: usize = 1000;
/// Longest lease accepted.
pub const MAX_LEASE_TTL_MS: u64 = 60_000;

/// A record's version: ordered by token first, then sequence, so that a newer leader's writes
/// always beat a fenced-out leader's partial writes.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(deny_unknown_fields)]
pub struct Version {
    /// Fencing token of the writer.
    pub token: u64,
    /// Writer-chosen sequence, increasing per writer.
    pub seq: u64,
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.token, self.seq)
    }
}

/// One stored value with its version, token and domain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// Key within the domain.
    pub key: String,
    /// Domain it belongs to.
    pub domain: String,
    /// Fencing token it was written under (equals `version.token`).
    pub token: u64,
    /// Version.
    pub version: Version,
    /// The value.
    pub value: serde_json::Value,
}

/// One key of a write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteEntry {
    /// Key.
    pub key: String,
    /// Value.
    pub value: serde_json::Value,
    /// Sequence; the version is `(token, seq)`.
    pub seq: u64,
}

/// A write of one or more keys under one token, applied atomically by each replica.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteBody {
    /// The writer's fencing token in this domain.
    pub token: u64,
    /// Keys to write.
    pub entries: Vec<WriteEntry>,
}

/// A replica's acknowledgement of a write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WriteReply {
    /// Per entry: stored (true) or already superseded by a newer version (false).
    pub applied: Vec<bool>,
    /// The domain's highest token after the write.
    pub current_token: u64,
}

/// Keys to read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadBody {
    /// Keys.
    pub keys: Vec<String>,
}

/// Records in the order of the keys asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadReply {
    /// One per key, `null` if absent.
    pub records: Vec<Option<Record>>,
}

/// Newer records to install (read repair): not a new write, so not fenced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepairBody {
    /// Records, each installed only if newer than what the replica has.
    pub records: Vec<Record>,
}

/// How many records a repair installed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepairReply {
    /// Installed.
    pub installed: usize,
}

/// A page of a key range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanReply {
    /// Records in key order.
    pub items: Vec<Record>,
    /// Last key of a full page (pass as `after`), or null at the end.
    pub next: Option<String>,
}

/// A lease request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaseBody {
    /// The candidate or leader (a node name).
    pub holder: String,
    /// Token asked for (acquire) or held (renew, release).
    pub token: u64,
    /// Lease length from the replica's receipt.
    #[serde(default)]
    pub ttl_ms: u64,
}

/// A replica's view of a domain's lease.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct LeaseState {
    /// Domain.
    pub domain: String,
    /// Highest token granted or accepted in the domain.
    pub max_token: u64,
    /// Holder of the last grant, if not released.
    pub holder: Option<String>,
    /// Token of the last grant.
    pub holder_token: u64,
    /// Time left on the lease by this replica's clock (0 = expired).
    pub remaining_ms: u64,
}

/// The answer to a lease request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaseReply {
    /// Granted, renewed or released.
    pub granted: bool,
    /// The replica's state after the request.
    pub state: LeaseState,
}
