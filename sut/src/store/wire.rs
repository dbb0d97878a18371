//! What store replicas and their clients exchange over HTTP.
//!
//! Routes (all JSON; errors are `{"error", "message"}`, a fenced write adds `current_token`):
//! - `POST /kv/{domain}/write` [`WriteBody`] → [`WriteReply`] (409 `fenced`)
//! - `POST /kv/{domain}/read` [`ReadBody`] → [`ReadReply`]
//! - `POST /kv/{domain}/repair` [`RepairBody`] → [`RepairReply`]
//! - `GET /kv/{domain}/scan?prefix=&after=&limit=` → [`ScanReply`]
//! - `GET /lease/{domain}` → [`LeaseState`]
//! - `POST /lease/{domain}/{acquire|renew|release}` [`LeaseBody`] → [`LeaseReply`]
//!
//! Every answer about a fenced domain carries the replica's fencing floor (`current_token`,
//! or `max_token` in lease state): the highest token it has granted or accepted there. That is
//! how a leader learns that a replica it needs has promised a higher token than its own (the
//! elector then steps down and campaigns above it, [`crate::lease`]).
//!
//! Tokens are bounded by [`MAX_TOKEN`]: a write, lease request or repaired version above it is
//! refused with 400 `bad_token`, so no token arithmetic can wrap and every token survives a
//! JSON double. Domains written without a leader ([`UNFENCED_DOMAINS`]) carry token 0 and
//! nothing else; they have no leases and no fencing.

use serde::{Deserialize, Serialize};

/// Store domains: each has its own records and, if fenced, its own fencing token and lease.
pub const DOMAINS: &[&str] = &[
    "order",
    "payment",
    "inventory",
    "inventory-eventual",
    "shipping",
    "order-intake",
];
/// Domains written without a leader: every write carries token 0, none is refused as stale,
/// and no lease can be taken. Versions there order by sequence alone (last writer wins).
/// `inventory-eventual` holds the inventory in eventual mode, `order-intake` the orders every
/// order node accepts into its own partition (every other domain, shipping included, is
/// written by its role's elected leader).
pub const UNFENCED_DOMAINS: &[&str] = &["inventory-eventual", "order-intake"];

/// Whether `domain` is fenced by lease tokens (a known domain not in [`UNFENCED_DOMAINS`]).
pub fn is_fenced(domain: &str) -> bool {
    DOMAINS.contains(&domain) && !UNFENCED_DOMAINS.contains(&domain)
}

/// The highest fencing token a replica accepts: 2^53 - 1, the largest integer a JSON double
/// holds exactly. Far below `u64::MAX`, so `token + 1` never wraps.
pub const MAX_TOKEN: u64 = (1 << 53) - 1;

/// Whether `token` may be written in `domain`: 1 to [`MAX_TOKEN`] in a fenced domain, 0 in an
/// unfenced one. The error says why not.
pub fn check_token(domain: &str, token: u64) -> Result<(), String> {
    if !is_fenced(domain) {
        return if token == 0 {
            Ok(())
        } else {
            Err(format!(
                "domain {domain} is not fenced (written without a leader): its token is 0, got {token}"
            ))
        };
    }
    if token == 0 || token > MAX_TOKEN {
        return Err(format!(
            "domain {domain} is fenced: tokens are 1 to {MAX_TOKEN}, got {token}"
        ));
    }
    Ok(())
}

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
    /// The domain's highest token at this replica (its fencing floor; 0 if unfenced).
    #[serde(default)]
    pub current_token: u64,
}

/// Newer records to install (read repair): not a new write, so not fenced as stale, but a
/// replica installs a version only if its token is within its floor (no higher than the
/// highest token it has granted or accepted in the domain) and within [`MAX_TOKEN`].
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
    /// Not installed because their token is above this replica's floor (the replica has not
    /// seen that token yet; the leader's next write brings it).
    #[serde(default)]
    pub above_floor: usize,
}

/// A page of a key range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanReply {
    /// Records in key order.
    pub items: Vec<Record>,
    /// Last key of a full page (pass as `after`), or null at the end.
    pub next: Option<String>,
    /// The domain's highest token at this replica (its fencing floor; 0 if unfenced).
    #[serde(default)]
    pub current_token: u64,
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
