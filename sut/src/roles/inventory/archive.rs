//! Settled reservations leave their SKU record, so that the record (read and written whole on
//! every reserve, release and commit of the SKU) holds the live reservations only and does not
//! grow with the run. Linearizable mode with idempotency on; eventual mode and
//! `--no-idempotency` keep everything in the SKU record.
//!
//! A *home* is a reservation's key with every entry about it: the reserve that made it (or a
//! reserve that was refused: a home without a reservation) and the commit or release that
//! settled it. A home is settled once its reservation is committed or released, or it has none:
//! nothing changes it again but a replay's count. A settled home moves out, each of its
//! entries (and its reservation, beside its reserve's entry) to the archive record under its
//! own storage key, `done/<sku>/<key>` ([`Settled`]), in two writes, each a versioned write of
//! the SKU record with archive records beside it:
//!
//! 1. *copy*: the archive records are written with the SKU record still holding the home;
//! 2. *drop*: once that write had W acknowledgements (this process remembers which, in
//!    [`Copied`]), the next write of the SKU leaves the home out of the SKU record (and writes
//!    its archive records again, as they are then).
//!
//! So an archive record is durable before the SKU record stops holding its home, and the SKU
//! record wins: an archive record is merged into a SKU's state only when the SKU record holds
//! nothing of its home (a deposed leader's late copy can then never override what the SKU
//! record says). A request reads, beside the SKU record, the archive records of its own key
//! and of the reservation it names, so a replay of an archived key still gets its first
//! answer, another request under an archived key is still `idempotency_key_reused`, and a
//! release or commit of an archived reservation is refused as `not_reserved`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::sku::{Reservation, ReservationStatus, SkuState};
use crate::roles::effect::{Entry, Kind};

/// Store key prefix of archive records.
pub const ARCHIVE: &str = "done/";
/// Settled homes one write copies out at most (the rest wait for the next writes).
pub const COPY_BATCH: usize = 32;

/// One archived storage key of a settled home: its entry and, under a reserve's key, the
/// reservation it made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settled {
    /// SKU.
    pub sku: String,
    /// The storage key.
    pub key: String,
    /// The entry under it.
    #[serde(default)]
    pub entry: Option<Entry>,
    /// The reservation made under it (committed or released).
    #[serde(default)]
    pub reservation: Option<Reservation>,
}

impl Settled {
    /// The home it belongs to.
    pub fn home(&self) -> String {
        self.entry
            .as_ref()
            .map_or_else(|| self.key.clone(), |e| home_of(&self.key, e))
    }
}

/// The store key of the archive record of `key` (a storage key) of `sku`.
pub fn archive_key(sku: &str, key: &str) -> String {
    format!("{ARCHIVE}{sku}/{key}")
}

/// The home of the entry under `storage_key`: the reservation a reserve made, or the one a
/// release or commit names.
pub fn home_of(storage_key: &str, e: &Entry) -> String {
    match e.kind {
        Kind::Reserve => storage_key.to_owned(),
        _ => e
            .names
            .clone()
            .or_else(|| {
                e.request
                    .get("reservation")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| storage_key.to_owned()),
    }
}

impl SkuState {
    /// Whether the state holds anything of `home`: its reservation or an entry about it.
    pub fn mentions(&self, home: &str) -> bool {
        self.reservations.contains_key(home)
            || self.entries.iter().any(|(sk, e)| home_of(sk, e) == home)
    }

    /// Merges an archive record read beside the SKU record, unless the SKU record holds
    /// something of its home (the SKU record wins).
    pub fn merge_archived(&mut self, s: Settled) {
        let home = s.home();
        if s.sku != self.sku || (self.mentions(&home) && !self.archived.contains(&home)) {
            return;
        }
        if let Some(r) = s.reservation {
            self.reservations.insert(s.key.clone(), r);
        }
        if let Some(e) = s.entry {
            self.entries.insert(s.key, e);
        }
        self.archived.insert(home);
    }

    /// Its settled homes: reservations committed or released, and entries of no reservation.
    pub fn settled_homes(&self) -> BTreeSet<String> {
        let mut homes: BTreeSet<String> = self.reservations.keys().cloned().collect();
        homes.extend(self.entries.iter().map(|(sk, e)| home_of(sk, e)));
        homes.retain(|h| {
            self.reservations
                .get(h)
                .is_none_or(|r| r.status != ReservationStatus::Reserved)
        });
        homes
    }

    /// The archive records of `home` as the state holds it now, by storage key.
    pub fn settled(&self, home: &str) -> Vec<Settled> {
        let mut out: BTreeMap<&str, Settled> = BTreeMap::new();
        let blank = |key: &str| Settled {
            sku: self.sku.clone(),
            key: key.to_owned(),
            entry: None,
            reservation: None,
        };
        for (sk, e) in self.entries.iter().filter(|(sk, e)| home_of(sk, e) == home) {
            out.entry(sk).or_insert_with(|| blank(sk)).entry = Some(e.clone());
        }
        if let Some(r) = self.reservations.get(home) {
            out.entry(home).or_insert_with(|| blank(home)).reservation = Some(r.clone());
        }
        out.into_values().collect()
    }

    /// The state without the homes in `gone`.
    pub fn without(&self, gone: &BTreeSet<String>) -> SkuState {
        let mut s = self.clone();
        s.reservations.retain(|k, _| !gone.contains(k));
        s.entries.retain(|sk, e| !gone.contains(&home_of(sk, e)));
        s.archived.clear();
        s
    }
}

/// What one write of a SKU does with its settled homes.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Left out of the SKU record (their archive record is written as they are now).
    pub drop: BTreeSet<String>,
    /// Copied to their archive record, still in the SKU record.
    pub copy: BTreeSet<String>,
}

impl Plan {
    /// The store entries of one write: the SKU record under `sku_key` and the archive records.
    pub fn writes(&self, unit: &SkuState, sku_key: String) -> Vec<(String, Value)> {
        let record = unit.without(&self.drop);
        let mut out = vec![(sku_key, serde_json::to_value(&record).unwrap_or_default())];
        for home in self.drop.iter().chain(&self.copy) {
            for s in unit.settled(home) {
                out.push((
                    archive_key(&unit.sku, &s.key),
                    serde_json::to_value(&s).unwrap_or_default(),
                ));
            }
        }
        out
    }
}

/// Per SKU, the settled homes this process copied with W acknowledgements that the SKU record
/// may still hold: the next write of the SKU drops them. At most [`COPY_BATCH`] per SKU are
/// held between two writes of it (one write copies that many and drops all the earlier ones).
#[derive(Debug, Clone, Default)]
pub struct Copied(Arc<Mutex<BTreeMap<String, BTreeSet<String>>>>);

impl Copied {
    /// The plan of the next write of `unit` (the caller holds the SKU's lock until
    /// [`Copied::saved`]).
    pub fn plan(&self, unit: &SkuState) -> Plan {
        let copied = self
            .0
            .lock()
            .map(|m| m.get(&unit.sku).cloned().unwrap_or_default())
            .unwrap_or_default();
        let settled = unit.settled_homes();
        let drop: BTreeSet<String> = settled
            .iter()
            .filter(|h| copied.contains(*h) || unit.archived.contains(*h))
            .cloned()
            .collect();
        let copy = settled
            .into_iter()
            .filter(|h| !drop.contains(h))
            .take(COPY_BATCH)
            .collect();
        Plan { drop, copy }
    }

    /// The write planned for `unit` had W acknowledgements: its dropped homes are gone from
    /// the SKU record, its copied ones may be dropped next.
    pub fn saved(&self, unit: &SkuState) {
        let plan = self.plan(unit);
        if let Ok(mut m) = self.0.lock() {
            let set = m.entry(unit.sku.clone()).or_default();
            set.retain(|h| !plan.drop.contains(h));
            set.extend(plan.copy);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roles::effect::Decision;
    use crate::roles::inventory::sku::{Request, ReserveRequest, SettleRequest};

    fn reserve(s: &mut SkuState, key: &str, qty: i64) {
        let req = Request::Reserve(ReserveRequest {
            sku: s.sku.clone(),
            qty,
            order_id: key.into(),
        });
        decide(s, Kind::Reserve, key, &req);
    }

    fn settle(s: &mut SkuState, kind: Kind, key: &str, resv: &str, qty: i64) {
        let req = Request::Settle(SettleRequest {
            sku: s.sku.clone(),
            qty,
            order_id: resv.into(),
            reservation: Some(resv.into()),
        });
        decide(s, kind, key, &req);
    }

    /// Decides and stores the entry, as the ledger does.
    fn decide(s: &mut SkuState, kind: Kind, key: &str, req: &Request) {
        let d = s.decide(kind, key, key, req, true).expect("decided");
        let (status, names, refusal) = match d {
            Decision::Applied { names } => (201, names, None),
            Decision::Refused(e) => (e.status.as_u16(), None, Some(Value::Null)),
        };
        let entry = Entry {
            key: key.into(),
            kind,
            request: serde_json::to_value(req).expect("json"),
            status,
            refusal,
            names,
            replays: 0,
            at_unix_ms: 0,
        };
        s.entries.insert(key.into(), entry);
    }

    /// Proves a committed, a released and a refused home are settled and a reserved one is
    /// not; that a settled home is copied first (still in the SKU record) and dropped from it
    /// only by the write after the copy was acknowledged, its archive records then holding its
    /// reservation and every entry about it, each under its own key; and that the SKU record
    /// keeps the live reservation and the stock.
    #[test]
    fn settled_homes_are_copied_then_dropped() {
        let mut s = SkuState::fresh("s", 10);
        reserve(&mut s, "a", 2);
        reserve(&mut s, "b", 3);
        reserve(&mut s, "c", 4);
        reserve(&mut s, "d", 5);
        settle(&mut s, Kind::Commit, "a:commit", "a", 2);
        settle(&mut s, Kind::Release, "b:release", "b", 3);
        let want: BTreeSet<String> = ["a", "b", "d"].map(String::from).into();
        assert_eq!(s.settled_homes(), want, "d was refused: 1 left after 2+3+4");

        let copied = Copied::default();
        let first = copied.plan(&s);
        assert!(first.drop.is_empty());
        assert_eq!(first.copy, want);
        let w = first.writes(&s, "sku/s".into());
        let keys: Vec<&str> = w.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "sku/s",
                "done/s/a",
                "done/s/a:commit",
                "done/s/b",
                "done/s/b:release",
                "done/s/d"
            ]
        );
        let kept: SkuState = serde_json::from_value(w[0].1.clone()).expect("sku");
        assert_eq!(
            kept.reservations.len(),
            3,
            "nothing dropped before the copy is acked"
        );
        copied.saved(&s);

        let second = copied.plan(&s);
        assert_eq!(second.drop, want);
        let w = second.writes(&s, "sku/s".into());
        let kept: SkuState = serde_json::from_value(w[0].1.clone()).expect("sku");
        assert_eq!(kept.reservations.keys().collect::<Vec<_>>(), ["c"]);
        assert_eq!(kept.entries.keys().collect::<Vec<_>>(), ["c"]);
        assert_eq!(
            (kept.available, kept.initial),
            (4, 10),
            "b's 3 units came back"
        );
        let a: Settled = serde_json::from_value(w[1].1.clone()).expect("archive");
        assert_eq!((w[1].0.as_str(), a.home().as_str()), ("done/s/a", "a"));
        assert_eq!(
            a.reservation.map(|r| r.status),
            Some(ReservationStatus::Committed)
        );
        assert_eq!(a.entry.map(|e| e.kind), Some(Kind::Reserve));
        let commit: Settled = serde_json::from_value(w[2].1.clone()).expect("archive");
        assert_eq!((commit.home().as_str(), commit.reservation), ("a", None));
        copied.saved(&s);
        assert_eq!(copied.plan(&kept), Plan::default(), "nothing left to move");
    }

    /// Proves an archive record is merged only when the SKU record holds nothing of its home
    /// (a stale archive record cannot override the SKU record), that the records of one home
    /// merge together, and that a merged home is written back to its archive records and kept
    /// out of the SKU record.
    #[test]
    fn the_sku_record_wins_over_an_archive_record() {
        let mut s = SkuState::fresh("s", 10);
        reserve(&mut s, "a", 2);
        reserve(&mut s, "b", 3);
        settle(&mut s, Kind::Commit, "b:commit", "b", 3);
        let archived = s.settled("b");
        assert_eq!(archived.len(), 2, "b and b:commit");
        let mut stale = s.settled("a");
        if let Some(r) = stale[0].reservation.as_mut() {
            r.status = ReservationStatus::Committed;
        }
        let mut live = s.without(&["b".to_owned()].into());
        live.merge_archived(stale.remove(0));
        assert_eq!(
            live.reservations["a"].status,
            ReservationStatus::Reserved,
            "the SKU record's reservation stands"
        );
        assert!(live.archived.is_empty());
        for r in archived.iter().rev().cloned() {
            live.merge_archived(r);
        }
        assert!(live.archived.contains("b"));
        assert!(live.entries.contains_key("b:commit"), "a replay finds it");
        assert!(live.reservations.contains_key("b"));
        let plan = Copied::default().plan(&live);
        assert!(plan.drop.contains("b"), "{plan:?}");
        let w = plan.writes(&live, "sku/s".into());
        let kept: SkuState = serde_json::from_value(w[0].1.clone()).expect("sku");
        assert!(!kept.mentions("b"));
        let back: Vec<Settled> = w[1..]
            .iter()
            .map(|(_, v)| serde_json::from_value(v.clone()).expect("archive"))
            .collect();
        assert_eq!(back, archived);
    }
}
