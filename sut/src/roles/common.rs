//! Pieces the effect roles (payment, inventory, shipping) and order share: the in-flight key
//! set behind 409s, the store clients of a role, and paginated admin reads.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::StatusCode;
use axum::Json;
use serde_json::json;

use super::leader::store_unavailable;
use super::Boot;
use crate::http::{ApiError, Page};
use crate::lease::{Candidate, Elector};
use crate::quorum::replicas::Replicas;
use crate::quorum::Quorum;
use crate::store::wire::is_fenced;

/// Keys in flight in one process; most keys held at once.
pub const MAX_IN_FLIGHT_KEYS: usize = 100_000;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Nanoseconds since the Unix epoch (fresh storage keys when idempotency is off).
pub fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// Idempotency keys whose first request is still being served here.
#[derive(Clone, Default)]
pub struct InFlightKeys {
    set: Arc<Mutex<HashSet<String>>>,
}

/// Removes its key from the set when dropped, however the request ends.
pub struct InFlightGuard {
    set: Arc<Mutex<HashSet<String>>>,
    key: String,
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        if let Ok(mut s) = self.set.lock() {
            s.remove(&self.key);
        }
    }
}

impl InFlightKeys {
    /// Marks `key` in flight, or 409 `in_flight` if it already is.
    pub fn enter(&self, key: &str) -> Result<InFlightGuard, ApiError> {
        let mut set = self
            .set
            .lock()
            .map_err(|_| ApiError::internal("in-flight set poisoned"))?;
        if set.len() >= MAX_IN_FLIGHT_KEYS {
            return Err(ApiError::overloaded(format!(
                "{MAX_IN_FLIGHT_KEYS} keys already in flight"
            )));
        }
        if !set.insert(key.to_owned()) {
            return Err(ApiError::conflict(
                "in_flight",
                format!("a request with key {key:?} is still in flight"),
            ));
        }
        Ok(InFlightGuard {
            set: self.set.clone(),
            key: key.to_owned(),
        })
    }
}

/// The store replicas and a quorum client for `state` in the store domain of the same name.
pub fn store_for(boot: &Boot, state: &'static str) -> anyhow::Result<(Replicas, Quorum)> {
    store_in(boot, state, state)
}

/// The store replicas and a quorum client for `state` in store `domain`.
pub fn store_in(
    boot: &Boot,
    state: &'static str,
    domain: &str,
) -> anyhow::Result<(Replicas, Quorum)> {
    let s = &boot.cfg.settings;
    let client = boot.peers.builder(s.store_timeout());
    let replicas = Replicas::with_client(boot.cfg.store_replicas(), client);
    let spec = s.quorum_for(state, replicas.len())?;
    let quorum = Quorum::new(&replicas, spec, state, domain, boot.cfg.node_index());
    Ok((replicas, quorum))
}

/// Starts this node's elector for `quorum`'s domain. It shares the quorum client's token
/// floor, so a replica that answers one of the role's writes or reads with a higher token
/// ends this node's leadership. `lease_check` false makes it trust its leadership flag until
/// a whole TTL of failed renewals, or a fenced write ([`Candidate::lease_check`]).
pub fn elector_for(
    boot: &Boot,
    replicas: &Replicas,
    quorum: &Quorum,
    lease_check: bool,
) -> Elector {
    assert!(
        is_fenced(quorum.domain()),
        "domain {} is written without a leader",
        quorum.domain()
    );
    Elector::start(Candidate {
        domain: quorum.domain().to_owned(),
        node: boot.cfg.node.clone(),
        replicas: replicas.clone(),
        floor: quorum.floor().clone(),
        ttl: boot.cfg.settings.lease_ttl(),
        rng: boot.rng.clone(),
        lease_check,
    })
}

/// A paginated admin read of the values under `prefix`: `{"items": [...], "next": cursor}`.
pub async fn admin_page(
    quorum: &Quorum,
    prefix: &str,
    page: &Page,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (records, next) = quorum
        .scan(prefix, page.after.as_deref(), page.limit())
        .await
        .map_err(store_unavailable)?;
    let items: Vec<serde_json::Value> = records.into_iter().map(|r| r.value).collect();
    Ok(Json(json!({"items": items, "next": next})))
}

/// Items after the cursor `page.after`, at most `page.limit()`, with the next cursor: the
/// paginated admin read of records built in memory, each with its cursor (sorted here).
pub fn paginate(
    mut items: Vec<(String, serde_json::Value)>,
    page: &Page,
) -> Json<serde_json::Value> {
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let limit = page.limit();
    let mut rest = items
        .into_iter()
        .filter(|(c, _)| page.after.as_deref().is_none_or(|a| c.as_str() > a))
        .peekable();
    let mut out = Vec::new();
    let mut last = None;
    while out.len() < limit {
        let Some((c, v)) = rest.next() else { break };
        out.push(v);
        last = Some(c);
    }
    let next = if rest.peek().is_some() { last } else { None };
    Json(json!({"items": out, "next": next}))
}

/// A JSON answer with a status.
pub type Answer = (StatusCode, Json<serde_json::Value>);
