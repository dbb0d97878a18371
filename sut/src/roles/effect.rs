//! One key, one effect: the dedup-and-effect logic every effect role runs (payment, shipping,
//! inventory), and the reuse check and counters the order intake shares.
//!
//! An effect role keeps its state in *units*: store records that hold both the state effects
//! change (an order's payments, an order's shipment, a SKU's stock and reservations) and the
//! [`Entry`] of every effect or stored refusal made on it, under its idempotency key. One
//! request is one [`Ledger::run`]:
//!
//! 1. the key is marked in flight in this process (a second request with it meanwhile gets 409
//!    `in_flight`, which is not an answer: the caller retries) and the unit is locked;
//! 2. the key's owner (`keys/<key>`: the unit it was first used on) and the unit are read
//!    through the quorum client (R of N replicas);
//! 3. a key owned by another unit is 422 `idempotency_key_reused`; an entry under the key is a
//!    replay when its kind and request are the same: the first answer again (200, or the
//!    stored refusal) with `replays` one higher; another request under the key is 422
//!    `idempotency_key_reused`;
//! 4. otherwise the role decides on the unit ([`Effects::decide`]): an effect, a refusal that
//!    is stored so that a retry gets it again, or an error that changes nothing; the unit is
//!    written with its new entry (and the key's owner) under the leader's fencing token, in one
//!    versioned write, so that effect, entry and owner are seen together or not at all;
//! 5. only once W replicas acknowledged that write does the effect count as applied:
//!    `effects_applied_total{kind}` and one `effect applied` log line (`kind`, `key`). A write
//!    with an unknown outcome logs `effect outcome unknown` and answers 503 `outcome_unknown`;
//!    the retry under the same key settles it.
//!
//! Across nodes one key makes one effect because only the role's elected leader runs this (the
//! other nodes forward to it, [`super::leader`]), the in-flight set and the unit lock serialize
//! it there, and a deposed leader's writes are fenced by the replicas that granted its
//! successor's token: a new leader's read (R + W > N) sees every entry an old leader had
//! acknowledged. With `--no-idempotency` step 3 is skipped and every request is stored under a
//! fresh storage key (`<key>#<ns>`): every request is a new effect.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::common::{now_ms, now_ns, Answer, InFlightKeys};
use super::leader::write_error;
use crate::http::ApiError;
use crate::ids::fnv1a64;
use crate::lease::Elector;
use crate::limits::bump;
use crate::quorum::{Quorum, WriteOutcome};
use crate::telemetry::Repeat;

/// Entries one unit holds at most: a bound on the record's size (a full SKU unit stays well
/// below the 2 MiB a store request body may have; `unit_size_bound` in the tests).
pub const MAX_ENTRIES_PER_UNIT: usize = 3_000;
/// Lock stripes of a ledger: units whose keys hash to one stripe take turns.
const LOCK_STRIPES: usize = 256;
/// Store key prefix of key owners: `keys/<key>` holds the unit a key was first used on.
const OWNERS: &str = "keys/";

/// The kinds of effect, as metric labels and in log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// An order placed (the order intake).
    Order,
    /// Money taken.
    Charge,
    /// Money given back.
    Refund,
    /// Stock held for an order or a client.
    Reserve,
    /// Held stock given back.
    Release,
    /// Held stock taken for good.
    Commit,
    /// A shipment created.
    Ship,
    /// A shipment cancelled.
    Cancel,
}

impl Kind {
    /// The label: `charge`, `reserve`, ...
    pub fn label(self) -> &'static str {
        match self {
            Kind::Order => "order",
            Kind::Charge => "charge",
            Kind::Refund => "refund",
            Kind::Reserve => "reserve",
            Kind::Release => "release",
            Kind::Commit => "commit",
            Kind::Ship => "ship",
            Kind::Cancel => "cancel",
        }
    }

    /// Sets this process's counters of `kinds` to 0, so that they are present from the start.
    pub fn register(kinds: &[Kind]) {
        for k in kinds {
            crate::telemetry::register_duplicates(
                &[k.label()],
                &[Repeat::Deduplicated, Repeat::Applied],
            );
            metrics::counter!("effects_applied_total", "kind" => k.label()).increment(0);
            metrics::counter!("effect_requests_total", "kind" => k.label()).increment(0);
        }
    }
}

/// One effect, or one stored refusal, under its idempotency key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The idempotency key.
    pub key: String,
    /// What kind of effect was asked.
    pub kind: Kind,
    /// The request as first made: a replay must be equal to it.
    pub request: Value,
    /// The first answer's status: 201 for an effect, the refusal's 4xx otherwise.
    pub status: u16,
    /// The body of a stored refusal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<Value>,
    /// The effect this one names (a refund its charge, a cancellation its shipment, a release
    /// or commit its reservation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub names: Option<String>,
    /// Times the key was presented again after the first.
    pub replays: u64,
    /// When it was decided.
    pub at_unix_ms: u64,
}

impl Entry {
    /// True for an effect (not a stored refusal).
    pub fn applied(&self) -> bool {
        self.status < 300
    }
}

/// A unit's entries by storage key (the idempotency key, or `<key>#<ns>` without idempotency).
pub type Entries = BTreeMap<String, Entry>;

/// A store record that holds effects with the state they change.
pub trait Unit {
    /// Its entries.
    fn entries(&self) -> &Entries;
    /// Its entries, to add one.
    fn entries_mut(&mut self) -> &mut Entries;
}

/// What a role decided on a request that was not a replay.
pub enum Decision {
    /// The effect happened; it names `names` (a refund its charge, ...).
    Applied {
        /// See [`Entry::names`].
        names: Option<String>,
    },
    /// A definite refusal, stored under the key so that a retry gets the same answer.
    Refused(ApiError),
}

/// One effect role: how its units are read, decided on and written.
pub trait Effects: Send + Sync {
    /// Its unit.
    type Unit: Unit + Send;
    /// A request's body.
    type Request: Serialize + Send + Sync;

    /// The store key of the unit `req` changes (also what is locked).
    fn unit_key(&self, req: &Self::Request) -> String;
    /// Reads that unit (a fresh one if it was never written) for a request under `key`.
    fn load(
        &self,
        key: &str,
        req: &Self::Request,
    ) -> impl Future<Output = Result<Self::Unit, ApiError>> + Send;
    /// Decides a new request under `key` on the unit, changing it; `storage_key` is where its
    /// entry goes (`key` itself, or `<key>#<ns>` without idempotency). An `Err` changes
    /// nothing and is not stored.
    fn decide(
        &self,
        unit: &mut Self::Unit,
        kind: Kind,
        key: &str,
        storage_key: &str,
        req: &Self::Request,
    ) -> Result<Decision, ApiError>;
    /// The store entries to write after the entry under `storage_key` changed.
    fn writes(
        &self,
        unit: &Self::Unit,
        storage_key: &str,
        req: &Self::Request,
    ) -> Vec<(String, Value)>;
    /// The answer body of an effect: the record it made, as it is now.
    fn view(&self, unit: &Self::Unit, storage_key: &str, entry: &Entry) -> Value;
    /// The [`Effects::writes`] of `unit` had W acknowledgements (called with the unit still
    /// locked).
    fn saved(&self, _unit: &Self::Unit) {}
}

/// 422 `idempotency_key_reused`: `key` made another request before.
pub fn reused(key: &str, what: &str) -> ApiError {
    ApiError::unprocessable(
        "idempotency_key_reused",
        format!("key {key:?} was used for {what}"),
    )
}

/// Whether a request under `key` repeats the stored one: Ok for the same kind and request,
/// 422 `idempotency_key_reused` for anything else.
pub fn check_replay(
    key: &str,
    stored: (Kind, &Value),
    asked: (Kind, &Value),
) -> Result<(), ApiError> {
    if stored == asked {
        return Ok(());
    }
    Err(reused(
        key,
        &format!("another request: {} {}", stored.0.label(), stored.1),
    ))
}

/// Counts and logs a dedup hit: the key found its stored result.
pub fn count_replay(kind: Kind, key: &str) {
    crate::telemetry::duplicate_effect(kind.label(), Repeat::Deduplicated);
    tracing::info!(%key, kind = kind.label(), "dedup hit");
}

/// The log message of a request arriving from a caller ([`count_arrival`]).
pub const ARRIVED: &str = "effect request arrived";

/// Counts and logs a request of `kind` under `key` as it arrives from a caller (not one a
/// node of the role forwarded to its leader): `effect_requests_total{kind}` and one
/// [`ARRIVED`] line with `kind` and `key`, from which the checker measures how many requests
/// each key brought (the amplification of a retry storm).
pub fn count_arrival(kind: Kind, key: &str) {
    metrics::counter!("effect_requests_total", "kind" => kind.label()).increment(1);
    tracing::info!(%key, kind = kind.label(), "{ARRIVED}");
}

/// Counts and logs an effect whose write W replicas acknowledged: the one place an effect is
/// counted as applied.
pub fn count_applied(kind: Kind, key: &str) {
    metrics::counter!("effects_applied_total", "kind" => kind.label()).increment(1);
    tracing::info!(%key, kind = kind.label(), "effect applied");
}

/// Async locks by unit key, striped: at most [`LOCK_STRIPES`] of them.
#[derive(Clone)]
struct Stripes(Arc<Vec<tokio::sync::Mutex<()>>>);

impl Stripes {
    fn new() -> Stripes {
        Stripes(Arc::new(
            (0..LOCK_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        ))
    }

    async fn lock(&self, key: &str) -> tokio::sync::MutexGuard<'_, ()> {
        let i = (fnv1a64(key.as_bytes()) % LOCK_STRIPES as u64) as usize;
        self.0[i].lock().await
    }
}

/// The effects of one role over its quorum client.
#[derive(Clone)]
pub struct Ledger {
    quorum: Quorum,
    elector: Option<Elector>,
    in_flight: InFlightKeys,
    locks: Stripes,
    idempotency: bool,
}

impl Ledger {
    /// A ledger over `quorum`, written by the leader `elector` elects (None: written without a
    /// leader, token 0: the inventory in eventual mode).
    pub fn new(quorum: Quorum, elector: Option<Elector>, idempotency: bool) -> Ledger {
        Ledger {
            quorum,
            elector,
            in_flight: InFlightKeys::default(),
            locks: Stripes::new(),
            idempotency,
        }
    }

    /// The quorum client.
    pub fn quorum(&self) -> &Quorum {
        &self.quorum
    }

    /// Whether replays are recognized.
    pub fn idempotency(&self) -> bool {
        self.idempotency
    }

    /// Serves one request of `kind` under `key` as the holder of `token` (steps 1 to 5 of the
    /// module's description).
    pub async fn run<E: Effects>(
        &self,
        effects: &E,
        token: u64,
        kind: Kind,
        key: &str,
        req: &E::Request,
    ) -> Result<Answer, ApiError> {
        let _key = self.in_flight.enter(key)?;
        let unit_key = effects.unit_key(req);
        let _unit = self.locks.lock(&unit_key).await;
        let owner_key = format!("{OWNERS}{key}");
        // The key's owner and the unit are read at once: the unit lock does not cover the
        // owner (another unit's request holds another lock), the in-flight set keeps this key
        // to one request on this node, and an owner once written never changes.
        let owner_read = async {
            if !self.idempotency {
                return Ok(None);
            }
            self.quorum
                .read_value::<String>(&owner_key)
                .await
                .map_err(super::leader::store_unavailable)
        };
        let (owner, unit) = futures::join!(owner_read, effects.load(key, req));
        if let Some(other) = owner?.filter(|o| *o != unit_key) {
            return Err(reused(key, &format!("another request, on {other}")));
        }
        let mut unit = unit?;
        let request = serde_json::to_value(req).map_err(|e| ApiError::internal(e.to_string()))?;
        if self.idempotency {
            if let Some(entry) = unit.entries_mut().get_mut(key) {
                check_replay(key, (entry.kind, &entry.request), (kind, &request))?;
                entry.replays = bump(entry.replays, "the replay count")?;
                let entry = entry.clone();
                self.save(token, kind, key, effects.writes(&unit, key, req))
                    .await?;
                effects.saved(&unit);
                count_replay(kind, key);
                return Ok(answer(effects, &unit, key, &entry, true));
            }
        }
        if unit.entries().len() >= MAX_ENTRIES_PER_UNIT {
            return Err(ApiError::overloaded(format!(
                "{unit_key} holds {MAX_ENTRIES_PER_UNIT} entries"
            )));
        }
        let storage_key = if self.idempotency {
            key.to_owned()
        } else {
            // Idempotency off: a key presented again is applied again, a double effect.
            if unit.entries().values().any(|e| e.key == key) {
                crate::telemetry::duplicate_effect(kind.label(), Repeat::Applied);
            }
            format!("{key}#{}", now_ns())
        };
        let decision = effects.decide(&mut unit, kind, key, &storage_key, req)?;
        let (status, refusal, names) = match &decision {
            Decision::Applied { names } => (StatusCode::CREATED, None, names.clone()),
            Decision::Refused(e) => (e.status, Some(error_body(e)), None),
        };
        let entry = Entry {
            key: key.to_owned(),
            kind,
            request,
            status: status.as_u16(),
            refusal,
            names,
            replays: 0,
            at_unix_ms: now_ms(),
        };
        unit.entries_mut()
            .insert(storage_key.clone(), entry.clone());
        let mut writes = effects.writes(&unit, &storage_key, req);
        if self.idempotency {
            writes.push((owner_key, json!(unit_key)));
        }
        self.save(token, kind, key, writes).await?;
        effects.saved(&unit);
        match decision {
            Decision::Applied { .. } => count_applied(kind, key),
            Decision::Refused(e) => {
                tracing::info!(%key, kind = kind.label(), error = e.code, "refusal stored");
            }
        }
        Ok(answer(effects, &unit, &storage_key, &entry, false))
    }

    /// Writes `entries` under `token`; anything but W acknowledgements is an error answer.
    async fn save(
        &self,
        token: u64,
        kind: Kind,
        key: &str,
        entries: Vec<(String, Value)>,
    ) -> Result<(), ApiError> {
        match self.quorum.write(token, entries).await {
            WriteOutcome::Ok(_) => Ok(()),
            other => {
                if matches!(other, WriteOutcome::Unknown { .. }) {
                    tracing::warn!(%key, kind = kind.label(), "effect outcome unknown");
                }
                Err(write_error(&other, self.elector.as_ref()))
            }
        }
    }
}

/// The answer to a request that found or made `entry`.
fn answer<E: Effects>(
    effects: &E,
    unit: &E::Unit,
    storage_key: &str,
    entry: &Entry,
    replayed: bool,
) -> Answer {
    let status = StatusCode::from_u16(entry.status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
    if let Some(body) = &entry.refusal {
        return (status, Json(body.clone()));
    }
    let mut body = effects.view(unit, storage_key, entry);
    if let Value::Object(m) = &mut body {
        m.insert("replayed".into(), json!(replayed));
        m.insert("replays".into(), json!(entry.replays));
    }
    let status = if replayed { StatusCode::OK } else { status };
    (status, Json(body))
}

/// The JSON body of an error, as it is sent.
pub fn error_body(e: &ApiError) -> Value {
    let mut body = e.details.clone().unwrap_or_default();
    body.insert("error".into(), json!(e.code));
    body.insert("message".into(), json!(e.message));
    Value::Object(body)
}

/// Every applied entry of `kind` in `entries`, with its storage key.
pub fn applied_of(entries: &Entries, kind: Kind) -> impl Iterator<Item = (&String, &Entry)> {
    entries
        .iter()
        .filter(move |(_, e)| e.kind == kind && e.applied())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves a replay is the same kind with an equal request, and anything else under the key
    /// is a 422 naming the stored request.
    #[test]
    fn replays_must_repeat_the_request() {
        let a = json!({"order_id": "o-1", "amount": 5});
        let b = json!({"order_id": "o-1", "amount": 6});
        assert!(check_replay("k", (Kind::Charge, &a), (Kind::Charge, &a)).is_ok());
        for asked in [(Kind::Charge, &b), (Kind::Refund, &a)] {
            let e = check_replay("k", (Kind::Charge, &a), asked).expect_err("reused");
            assert_eq!((e.status.as_u16(), e.code), (422, "idempotency_key_reused"));
            assert!(e.message.contains("charge"), "{}", e.message);
        }
    }

    /// Proves an entry's JSON round-trips and an entry is applied only with a 2xx status.
    #[test]
    fn entries_round_trip() {
        let e = Entry {
            key: "o-1:refund".into(),
            kind: Kind::Refund,
            request: json!({"order_id": "o-1", "amount": 5}),
            status: 201,
            refusal: None,
            names: Some("o-1:charge".into()),
            replays: 2,
            at_unix_ms: 1,
        };
        let back: Entry =
            serde_json::from_value(serde_json::to_value(&e).expect("json")).expect("reads back");
        assert_eq!(back, e);
        assert!(e.applied());
        assert!(!Entry { status: 422, ..e }.applied());
    }
}
