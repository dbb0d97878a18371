//! Applying one job of a group to the writer's transaction, and what is logged once the group
//! is committed. The fencing rules live here: which writes are refused as stale, which
//! repaired versions are installed, which leases are granted.

use std::time::{Duration, Instant};

use redb::ReadableTable;

use super::engine::{record_key, storage, DomainMeta, DomainState, EngineError};
use super::wire::{
    LeaseBody, LeaseReply, Record, RepairReply, Version, WriteBody, WriteReply, MAX_TOKEN,
};

/// One mutation.
#[derive(Debug)]
pub enum Op {
    /// A fenced write.
    Write(WriteBody),
    /// Read repair: install newer records, no fencing.
    Repair(Vec<Record>),
    /// Grant a lease under a strictly higher token.
    Acquire(LeaseBody),
    /// Extend the holder's lease.
    Renew(LeaseBody),
    /// Give the lease up.
    Release(LeaseBody),
}

/// The answer to an [`Op`].
#[derive(Debug, Clone)]
pub enum Answer {
    /// Write admitted.
    Written(WriteReply),
    /// Write refused: its token is below the domain's highest.
    Fenced {
        /// The domain's highest token.
        current_token: u64,
    },
    /// Repair done.
    Repaired(RepairReply),
    /// Lease decision.
    Lease(LeaseReply),
}

/// What the writer logs once a group is committed.
pub(super) enum Event {
    /// One key of an admitted write was stored.
    Accepted {
        domain: String,
        key: String,
        token: u64,
        version: Version,
    },
    /// A whole write was refused as stale: one line and one count, however many keys.
    Rejected {
        domain: String,
        key: String,
        keys: usize,
        rejected_token: u64,
        current_token: u64,
    },
    /// A stale write was admitted because fencing is off: one line for the write.
    Stale {
        domain: String,
        key: String,
        keys: usize,
        token: u64,
        current_token: u64,
        version: Version,
    },
    /// Read repair installed a record.
    Repaired {
        domain: String,
        key: String,
        version: Version,
    },
    /// Read repair offered a version above this replica's floor; not installed.
    RepairAboveFloor {
        domain: String,
        key: String,
        version: Version,
        floor: u64,
    },
    /// A lease was granted (acquired, or taken over by its token's holder on renewal).
    Granted {
        domain: String,
        holder: String,
        token: u64,
    },
}

pub(super) fn emit(events: Vec<Event>) {
    for e in events {
        match e {
            Event::Accepted {
                domain,
                key,
                token,
                version,
            } => {
                tracing::info!(%domain, %key, token, version = %version, "write accepted");
            }
            Event::Rejected {
                domain,
                key,
                keys,
                rejected_token,
                current_token,
            } => {
                metrics::counter!("fencing_rejected_writes_total", "domain" => domain.clone())
                    .increment(1);
                tracing::warn!(%domain, %key, keys, rejected_token, current_token, "fencing rejected write");
            }
            Event::Stale {
                domain,
                key,
                keys,
                token,
                current_token,
                version,
            } => {
                tracing::warn!(%domain, %key, keys, token, current_token, version = %version, "stale write accepted (fencing disabled)");
            }
            Event::Repaired {
                domain,
                key,
                version,
            } => {
                tracing::info!(%domain, %key, version = %version, "read repair installed");
            }
            Event::RepairAboveFloor {
                domain,
                key,
                version,
                floor,
            } => {
                tracing::info!(%domain, %key, version = %version, floor, "read repair above the floor not installed");
            }
            Event::Granted {
                domain,
                holder,
                token,
            } => {
                tracing::info!(%domain, %holder, token, "lease granted");
            }
        }
    }
}

/// One job against the group's transaction.
pub(super) struct Apply<'a, 't> {
    pub(super) domain: &'a str,
    pub(super) state: &'a mut DomainState,
    pub(super) records: &'a mut redb::Table<'t, &'static str, &'static [u8]>,
    pub(super) events: &'a mut Vec<Event>,
    pub(super) fencing: bool,
    pub(super) now: Instant,
    pub(super) meta_dirty: bool,
}

impl Apply<'_, '_> {
    /// The answer and whether records changed.
    pub(super) fn apply(&mut self, op: &Op) -> Result<(Answer, bool), EngineError> {
        match op {
            Op::Write(body) => self.write(body),
            Op::Repair(records) => self.repair(records),
            Op::Acquire(b) => Ok((self.acquire(b), false)),
            Op::Renew(b) => Ok((self.renew(b), false)),
            Op::Release(b) => Ok((self.release(b), false)),
        }
    }

    fn stored(&self, key: &str) -> Result<Option<Record>, EngineError> {
        match self
            .records
            .get(record_key(self.domain, key).as_str())
            .map_err(storage)?
        {
            Some(v) => serde_json::from_slice(v.value()).map(Some).map_err(storage),
            None => Ok(None),
        }
    }

    fn put(&mut self, rec: &Record) -> Result<(), EngineError> {
        let bytes = serde_json::to_vec(rec).map_err(storage)?;
        self.records
            .insert(record_key(self.domain, &rec.key).as_str(), bytes.as_slice())
            .map_err(storage)?;
        Ok(())
    }

    /// Raises the domain's floor to `token` (never lowers it: asserted).
    fn raise_floor(&mut self, token: u64) {
        assert!(
            token <= MAX_TOKEN,
            "token {token} above {MAX_TOKEN} reached the engine"
        );
        assert!(
            token >= self.state.meta.max_token,
            "floor of {} would go down: {} -> {token}",
            self.domain,
            self.state.meta.max_token
        );
        if token > self.state.meta.max_token {
            self.state.meta.max_token = token;
            self.meta_dirty = true;
        }
    }

    fn write(&mut self, body: &WriteBody) -> Result<(Answer, bool), EngineError> {
        assert!(body.token <= MAX_TOKEN, "the store's routes bound tokens");
        let current = self.state.meta.max_token;
        let stale = body.token < current;
        let first_key = || {
            body.entries
                .first()
                .map(|e| e.key.clone())
                .unwrap_or_default()
        };
        if stale && self.fencing {
            self.events.push(Event::Rejected {
                domain: self.domain.to_owned(),
                key: first_key(),
                keys: body.entries.len(),
                rejected_token: body.token,
                current_token: current,
            });
            return Ok((
                Answer::Fenced {
                    current_token: current,
                },
                false,
            ));
        }
        if body.token > current {
            self.raise_floor(body.token);
        }
        let mut applied = Vec::with_capacity(body.entries.len());
        let mut stale_applied: Option<(String, Version)> = None;
        for e in &body.entries {
            let version = Version {
                token: body.token,
                seq: e.seq,
            };
            let newer = self.stored(&e.key)?.is_none_or(|old| old.version < version);
            if newer {
                self.put(&Record {
                    key: e.key.clone(),
                    domain: self.domain.to_owned(),
                    token: body.token,
                    version,
                    value: e.value.clone(),
                })?;
                if stale {
                    stale_applied.get_or_insert_with(|| (e.key.clone(), version));
                } else {
                    self.events.push(Event::Accepted {
                        domain: self.domain.to_owned(),
                        key: e.key.clone(),
                        token: body.token,
                        version,
                    });
                }
            }
            applied.push(newer);
        }
        if let Some((key, version)) = stale_applied {
            self.events.push(Event::Stale {
                domain: self.domain.to_owned(),
                key,
                keys: applied.iter().filter(|a| **a).count(),
                token: body.token,
                current_token: current,
                version,
            });
        }
        let any = applied.iter().any(|a| *a);
        let reply = WriteReply {
            applied,
            current_token: self.state.meta.max_token,
        };
        Ok((Answer::Written(reply), any))
    }

    /// Installs each record that is newer than the stored one and whose token is within this
    /// replica's floor: a repair copies what a leader wrote elsewhere, so a token above every
    /// token this replica granted or accepted is either a write it has not seen yet (the
    /// leader's next write brings it) or forged. Repair never raises the floor.
    fn repair(&mut self, records: &[Record]) -> Result<(Answer, bool), EngineError> {
        let floor = self.state.meta.max_token;
        let (mut installed, mut above_floor) = (0, 0);
        for rec in records {
            assert!(
                rec.version.token <= MAX_TOKEN,
                "the store's routes bound tokens"
            );
            if rec.version.token > floor {
                above_floor += 1;
                self.events.push(Event::RepairAboveFloor {
                    domain: self.domain.to_owned(),
                    key: rec.key.clone(),
                    version: rec.version,
                    floor,
                });
                continue;
            }
            let newer = self
                .stored(&rec.key)?
                .is_none_or(|old| old.version < rec.version);
            if newer {
                self.put(rec)?;
                installed += 1;
                self.events.push(Event::Repaired {
                    domain: self.domain.to_owned(),
                    key: rec.key.clone(),
                    version: rec.version,
                });
            }
        }
        let reply = RepairReply {
            installed,
            above_floor,
        };
        Ok((Answer::Repaired(reply), installed > 0))
    }

    fn reply(&self, granted: bool) -> Answer {
        Answer::Lease(LeaseReply {
            granted,
            state: self.state.lease_state(self.domain, self.now),
        })
    }

    /// Grants iff the token is above every token granted or accepted here and the current
    /// lease has expired or is the candidate's own. A grant is a promise: writes below the
    /// token are refused from now on.
    fn acquire(&mut self, b: &LeaseBody) -> Answer {
        assert!(b.token <= MAX_TOKEN, "the store's routes bound tokens");
        let own = self.state.meta.holder.as_deref() == Some(b.holder.as_str());
        let free = !self.state.lease_active(self.now) || own;
        if b.token <= self.state.meta.max_token || !free {
            return self.reply(false);
        }
        self.grant(b);
        self.reply(true)
    }

    /// Records `b` as the lease (raising the floor to its token) and logs the grant.
    fn grant(&mut self, b: &LeaseBody) {
        self.raise_floor(b.token);
        self.state.meta = DomainMeta {
            max_token: b.token,
            holder: Some(b.holder.clone()),
            holder_token: b.token,
            ttl_ms: b.ttl_ms,
        };
        self.state.expires = Some(self.now + Duration::from_millis(b.ttl_ms));
        self.meta_dirty = true;
        self.events.push(Event::Granted {
            domain: self.domain.to_owned(),
            holder: b.holder.clone(),
            token: b.token,
        });
    }

    /// Extends the lease iff the holder still holds it under the same token and no higher
    /// token has been promised since. A leader whose token is at least this replica's floor
    /// also takes the lease here if it is free (it won its token at a majority that did not
    /// include this replica, or a loser's partial grant was released): no other candidate can
    /// win a token at or below the floor, so this promises nothing new to anyone else.
    fn renew(&mut self, b: &LeaseBody) -> Answer {
        assert!(b.token <= MAX_TOKEN, "the store's routes bound tokens");
        let m = &self.state.meta;
        let holds = m.holder.as_deref() == Some(b.holder.as_str())
            && m.holder_token == b.token
            && m.max_token == b.token;
        if holds {
            self.state.expires = Some(self.now + Duration::from_millis(b.ttl_ms));
            return self.reply(true);
        }
        if !self.state.lease_active(self.now) && b.token >= m.max_token {
            self.grant(b);
            return self.reply(true);
        }
        self.reply(false)
    }

    /// Ends the holder's lease early (its token stays promised).
    fn release(&mut self, b: &LeaseBody) -> Answer {
        let m = &self.state.meta;
        let ok = m.holder.as_deref() == Some(b.holder.as_str()) && m.holder_token == b.token;
        if ok {
            self.state.meta.holder = None;
            self.state.expires = None;
            self.meta_dirty = true;
        }
        self.reply(ok)
    }
}
