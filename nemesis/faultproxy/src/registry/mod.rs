//! The proxies of one `faultproxy` and every operation the API offers on them. Each operation
//! checks its whole input before it changes anything (`/populate` aside, which follows
//! Toxiproxy: see [`populate`]).

pub mod check;
pub mod populate;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tokio::sync::watch;

use crate::api::{NewProxy, Proxy, ProxyUpdate, ToxicUpdate, ToxicWire, WireError};
use crate::link::set::{HttpCounters, SharedRng, ToxicRt, ToxicSet};
use crate::link::LinkCtx;
use crate::listener::{Front, Parked};
pub use check::Failure;
use check::{check_name, check_new, check_upstream, resolve_listen};

/// Proxies one server holds.
pub const MAX_PROXIES: usize = 1024;
/// Toxics one proxy holds.
pub const MAX_TOXICS_PER_PROXY: usize = 32;

struct Entry {
    /// The bound address once started (what a read shows and `/populate` compares with).
    listen: String,
    upstream: String,
    toxics: Vec<Arc<ToxicRt>>,
    set: watch::Sender<Arc<ToxicSet>>,
    running: Option<Front>,
    parked: Option<Parked>,
}

impl Entry {
    fn new(listen: String, upstream: String) -> Entry {
        Entry {
            listen,
            upstream,
            toxics: Vec::new(),
            set: watch::channel(Arc::new(ToxicSet::default())).0,
            running: None,
            parked: None,
        }
    }

    fn view(&self, name: &str) -> Proxy {
        let mut toxics: Vec<_> = self.toxics.iter().map(|t| t.toxic.clone()).collect();
        toxics.sort_by_key(|t| t.stream);
        Proxy {
            name: name.to_owned(),
            listen: self.listen.clone(),
            upstream: self.upstream.clone(),
            enabled: self.running.is_some(),
            toxics,
        }
    }

    fn publish(&self) {
        self.set.send_replace(Arc::new(ToxicSet::new(&self.toxics)));
    }

    fn position(&self, toxic: &str) -> Result<usize, Failure> {
        self.toxics
            .iter()
            .position(|t| t.toxic.name == toxic)
            .ok_or_else(Failure::toxic_not_found)
    }
}

/// The proxies and the seeded RNG their random choices use.
pub struct Registry {
    proxies: BTreeMap<String, Entry>,
    rng: SharedRng,
    revision: u64,
}

impl Registry {
    /// An empty registry; `seed` drives jitter, slicer sizes and toxicity choices.
    pub fn new(seed: u64) -> Registry {
        Registry {
            proxies: BTreeMap::new(),
            rng: Arc::new(Mutex::new(ChaCha8Rng::seed_from_u64(seed))),
            revision: 0,
        }
    }

    fn entry(&self, name: &str) -> Result<&Entry, Failure> {
        self.proxies.get(name).ok_or_else(Failure::proxy_not_found)
    }

    fn entry_mut(&mut self, name: &str) -> Result<&mut Entry, Failure> {
        self.proxies
            .get_mut(name)
            .ok_or_else(Failure::proxy_not_found)
    }

    fn start(&self, name: &str, e: &mut Entry) -> Result<(), Failure> {
        if e.running.is_some() {
            return Ok(());
        }
        let listen = resolve_listen(&e.listen)?;
        let ctx = LinkCtx {
            upstream: e.upstream.clone(),
            toxics: e.set.subscribe(),
            rng: self.rng.clone(),
        };
        let front = Front::start(listen, e.parked.take(), ctx)
            .map_err(|err| Failure::internal(format!("proxy '{name}': listen {listen}: {err}")))?;
        e.listen = front.addr.to_string();
        e.running = Some(front);
        Ok(())
    }

    async fn stop(e: &mut Entry) {
        if let Some(front) = e.running.take() {
            e.parked = front.stop().await;
        }
    }

    /// Every proxy by name.
    pub fn list(&self) -> BTreeMap<String, Proxy> {
        self.proxies
            .iter()
            .map(|(n, e)| (n.clone(), e.view(n)))
            .collect()
    }

    /// One proxy.
    pub fn get(&self, name: &str) -> Result<Proxy, Failure> {
        Ok(self.entry(name)?.view(name))
    }

    /// Creates a proxy (409 if the name exists).
    pub async fn create(&mut self, p: NewProxy) -> Result<Proxy, Failure> {
        check_new(&p)?;
        if self.proxies.contains_key(&p.name) {
            return Err(Failure::new(StatusCode::CONFLICT, "proxy already exists"));
        }
        if self.proxies.len() >= MAX_PROXIES {
            return Err(Failure::bad_body(format!("at most {MAX_PROXIES} proxies")));
        }
        self.insert(p, None)
    }

    /// Adds a checked proxy, started (on `parked` if given) unless `enabled: false`; not added
    /// if it cannot start.
    fn insert(&mut self, p: NewProxy, parked: Option<Parked>) -> Result<Proxy, Failure> {
        let listen = if p.listen.is_empty() {
            "127.0.0.1:0".to_owned()
        } else {
            p.listen
        };
        let mut e = Entry::new(listen, p.upstream);
        e.parked = parked;
        if p.enabled.unwrap_or(true) {
            self.start(&p.name, &mut e)?;
        }
        let view = e.view(&p.name);
        self.proxies.insert(p.name, e);
        Ok(view)
    }

    /// Updates listen, upstream or enabled; a changed address (compared after resolving)
    /// restarts the proxy and drops its connections.
    pub async fn update(&mut self, name: &str, u: ProxyUpdate) -> Result<Proxy, Failure> {
        let e = self.entry(name)?;
        let listen_moved = match &u.listen {
            Some(l) => resolve_listen(l)? != resolve_listen(&e.listen)?,
            None => false,
        };
        if let Some(up) = &u.upstream {
            check_upstream(up)?;
        }
        let Some(mut e) = self.proxies.remove(name) else {
            return Err(Failure::proxy_not_found());
        };
        let enabled = u.enabled.unwrap_or(e.running.is_some());
        let moved = listen_moved || u.upstream.as_ref().is_some_and(|up| *up != e.upstream);
        if moved || !enabled {
            Registry::stop(&mut e).await;
        }
        if listen_moved {
            e.parked = None;
            e.listen = u.listen.unwrap_or_default();
        }
        if let Some(up) = u.upstream {
            e.upstream = up;
        }
        let started = if enabled {
            self.start(name, &mut e)
        } else {
            Ok(())
        };
        let view = e.view(name);
        self.proxies.insert(name.to_owned(), e);
        started.map(|()| view)
    }

    /// Deletes a proxy, closing its connections.
    pub async fn delete(&mut self, name: &str) -> Result<(), Failure> {
        let mut e = self
            .proxies
            .remove(name)
            .ok_or_else(Failure::proxy_not_found)?;
        Registry::stop(&mut e).await;
        Ok(())
    }

    /// A proxy's toxics.
    pub fn toxics(&self, name: &str) -> Result<Vec<crate::api::Toxic>, Failure> {
        Ok(self.entry(name)?.view(name).toxics)
    }

    /// One toxic.
    pub fn toxic(&self, proxy: &str, toxic: &str) -> Result<crate::api::Toxic, Failure> {
        let e = self.entry(proxy)?;
        Ok(e.toxics[e.position(toxic)?].toxic.clone())
    }

    fn next_revision(&mut self) -> u64 {
        self.revision = self
            .revision
            .checked_add(1)
            .expect("fewer than 2^64 toxic changes");
        self.revision
    }

    /// Adds a toxic, checking in Toxiproxy's order: the proxy (404), stream and type (400), a
    /// duplicate name (409), then the attributes (400).
    pub fn add_toxic(
        &mut self,
        proxy: &str,
        wire: ToxicWire,
    ) -> Result<crate::api::Toxic, Failure> {
        let e = self.entry(proxy)?;
        let wire_failure = |w: WireError| Failure::new(StatusCode::BAD_REQUEST, w.to_string());
        let (_, name, _) = wire.header().map_err(wire_failure)?;
        check_name("toxic", &name)?;
        if e.position(&name).is_ok() {
            return Err(Failure::new(StatusCode::CONFLICT, "toxic already exists"));
        }
        let toxic = wire.into_toxic().map_err(wire_failure)?;
        if e.toxics.len() >= MAX_TOXICS_PER_PROXY {
            return Err(Failure::bad_body(format!(
                "at most {MAX_TOXICS_PER_PROXY} toxics per proxy"
            )));
        }
        let revision = self.next_revision();
        let e = self.entry_mut(proxy)?;
        e.toxics.push(Arc::new(ToxicRt {
            toxic: toxic.clone(),
            revision,
            counters: Arc::new(Mutex::new(HttpCounters::default())),
        }));
        e.publish();
        Ok(toxic)
    }

    /// Updates a toxic's attributes or toxicity; connections apply the new revision at once.
    pub fn update_toxic(
        &mut self,
        proxy: &str,
        toxic: &str,
        u: ToxicUpdate,
    ) -> Result<crate::api::Toxic, Failure> {
        let e = self.entry(proxy)?;
        let old = e.toxics[e.position(toxic)?].clone();
        let mut t = old.toxic.clone();
        t.kind = t.kind.updated(&u.attributes).map_err(Failure::bad_body)?;
        if let Some(x) = u.toxicity {
            if !(0.0..=1.0).contains(&x) {
                return Err(Failure::bad_body(format!(
                    "toxicity {x} must be between 0 and 1"
                )));
            }
            t.toxicity = x;
        }
        let revision = self.next_revision();
        let e = self.entry_mut(proxy)?;
        let i = e.position(toxic)?;
        e.toxics[i] = Arc::new(ToxicRt {
            toxic: t.clone(),
            revision,
            counters: old.counters.clone(),
        });
        e.publish();
        Ok(t)
    }

    /// Removes a toxic.
    pub fn delete_toxic(&mut self, proxy: &str, toxic: &str) -> Result<(), Failure> {
        let e = self.entry_mut(proxy)?;
        let i = e.position(toxic)?;
        e.toxics.remove(i);
        e.publish();
        Ok(())
    }

    /// Enables every proxy and removes every toxic.
    pub async fn reset(&mut self) -> Result<(), Failure> {
        let names: Vec<String> = self.proxies.keys().cloned().collect();
        for name in names {
            let e = self.entry_mut(&name)?;
            e.toxics.clear();
            e.publish();
            let u = ProxyUpdate {
                enabled: Some(true),
                ..ProxyUpdate::default()
            };
            self.update(&name, u).await?;
        }
        Ok(())
    }

    /// Stops every proxy (on shutdown).
    pub async fn shutdown(&mut self) {
        for e in self.proxies.values_mut() {
            Registry::stop(e).await;
        }
    }
}
