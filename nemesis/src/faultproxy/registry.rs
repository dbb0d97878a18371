//! The proxies of one `faultproxy` and every operation the API offers on them. Each operation
//! validates its whole input before it changes anything.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tokio::sync::watch;

use super::engine::Engine;
use super::front::{Front, Parked};
use crate::toxiproxy::api::{NewProxy, Proxy, ProxyUpdate, Toxic, ToxicUpdate};

/// Proxies one server holds.
pub const MAX_PROXIES: usize = 1024;
/// Toxics one proxy holds.
pub const MAX_TOXICS_PER_PROXY: usize = 32;
/// Longest proxy or toxic name.
pub const MAX_NAME_BYTES: usize = 200;

/// An API failure: a status and Toxiproxy's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// HTTP status.
    pub status: StatusCode,
    /// Message.
    pub message: String,
}

impl Failure {
    fn new(status: StatusCode, message: impl Into<String>) -> Failure {
        Failure {
            status,
            message: message.into(),
        }
    }

    /// 400 `bad request body: ...`.
    pub fn bad_body(detail: impl std::fmt::Display) -> Failure {
        Failure::new(
            StatusCode::BAD_REQUEST,
            format!("bad request body: {detail}"),
        )
    }

    fn missing(field: &str) -> Failure {
        Failure::new(
            StatusCode::BAD_REQUEST,
            format!("missing required field: {field}"),
        )
    }

    fn proxy_not_found(name: &str) -> Failure {
        Failure::new(StatusCode::NOT_FOUND, format!("proxy not found: '{name}'"))
    }

    fn toxic_not_found(name: &str) -> Failure {
        Failure::new(StatusCode::NOT_FOUND, format!("toxic not found: '{name}'"))
    }
}

struct Running {
    engine: Engine,
    front: Front,
}

struct Entry {
    listen: String,
    upstream: String,
    toxics: Vec<Toxic>,
    resets: watch::Sender<Vec<Toxic>>,
    running: Option<Running>,
    parked: Option<Parked>,
}

impl Entry {
    fn view(&self, name: &str) -> Proxy {
        let mut toxics = self.toxics.clone();
        toxics.sort_by_key(|t| t.stream);
        Proxy {
            name: name.to_owned(),
            listen: self.listen.clone(),
            upstream: self.upstream.clone(),
            enabled: self.running.is_some(),
            toxics,
        }
    }

    fn publish_resets(&self) {
        let resets = self
            .toxics
            .iter()
            .filter(|t| super::front::applies(t))
            .cloned()
            .collect();
        self.resets.send_replace(resets);
    }
}

/// The proxies and the seeded RNG their random choices use.
pub struct Registry {
    proxies: BTreeMap<String, Entry>,
    seed: u64,
    rng: Arc<Mutex<ChaCha8Rng>>,
}

fn check_name(kind: &str, name: &str) -> Result<(), Failure> {
    if name.is_empty() {
        return Err(Failure::missing("name"));
    }
    if name.len() > MAX_NAME_BYTES
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
    {
        return Err(Failure::bad_body(format!(
            "{kind} name '{name}': use at most {MAX_NAME_BYTES} letters, digits, '-', '_', '.' or ':'"
        )));
    }
    Ok(())
}

/// Parses a listen address (`127.0.0.1:0` picks a port; `localhost` means 127.0.0.1).
fn parse_listen(listen: &str) -> Result<SocketAddr, Failure> {
    let s = if listen.is_empty() {
        "127.0.0.1:0"
    } else {
        listen
    };
    let s = s
        .strip_prefix("localhost:")
        .map_or(s.to_owned(), |p| format!("127.0.0.1:{p}"));
    s.parse()
        .map_err(|_| Failure::bad_body(format!("listen '{listen}': expected ip:port")))
}

fn check_upstream(upstream: &str) -> Result<(), Failure> {
    if upstream.is_empty() {
        return Err(Failure::missing("upstream"));
    }
    match upstream.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(()),
        _ => Err(Failure::bad_body(format!(
            "upstream '{upstream}': expected host:port"
        ))),
    }
}

fn check_new(p: &NewProxy) -> Result<(), Failure> {
    check_name("proxy", &p.name)?;
    check_upstream(&p.upstream)?;
    parse_listen(&p.listen)?;
    Ok(())
}

impl Registry {
    /// An empty registry; `seed` drives jitter and toxicity choices.
    pub fn new(seed: u64) -> Registry {
        Registry {
            proxies: BTreeMap::new(),
            seed,
            rng: Arc::new(Mutex::new(ChaCha8Rng::seed_from_u64(seed))),
        }
    }

    fn entry(&self, name: &str) -> Result<&Entry, Failure> {
        self.proxies
            .get(name)
            .ok_or_else(|| Failure::proxy_not_found(name))
    }

    fn entry_mut(&mut self, name: &str) -> Result<&mut Entry, Failure> {
        self.proxies
            .get_mut(name)
            .ok_or_else(|| Failure::proxy_not_found(name))
    }

    /// A proxy's entry and the position of one of its toxics (404 for either missing).
    fn toxic_mut(&mut self, proxy: &str, toxic: &str) -> Result<(&mut Entry, usize), Failure> {
        let e = self.entry_mut(proxy)?;
        let i = e
            .toxics
            .iter()
            .position(|t| t.name == toxic)
            .ok_or_else(|| Failure::toxic_not_found(toxic))?;
        Ok((e, i))
    }

    async fn start(&self, name: &str, e: &mut Entry) -> Result<(), Failure> {
        if e.running.is_some() {
            return Ok(());
        }
        let listen = parse_listen(&e.listen)?;
        let engine = Engine::start(name, &e.upstream, &e.toxics, self.seed)
            .await
            .map_err(|err| {
                Failure::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("proxy '{name}': starting the engine: {err}"),
                )
            })?;
        let parked = e.parked.take();
        let front = match Front::start(
            listen,
            parked,
            engine.addr,
            e.resets.subscribe(),
            self.rng.clone(),
        )
        .await
        {
            Ok(f) => f,
            Err(err) => {
                engine.stop().await;
                return Err(Failure::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("proxy '{name}': listen {listen}: {err}"),
                ));
            }
        };
        e.listen = front.addr.to_string();
        e.running = Some(Running { engine, front });
        Ok(())
    }

    async fn stop(e: &mut Entry) {
        if let Some(r) = e.running.take() {
            e.parked = r.front.stop().await;
            r.engine.stop().await;
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
        self.insert(p).await
    }

    async fn insert(&mut self, p: NewProxy) -> Result<Proxy, Failure> {
        let (resets, _) = watch::channel(Vec::new());
        let mut e = Entry {
            listen: if p.listen.is_empty() {
                "127.0.0.1:0".into()
            } else {
                p.listen.clone()
            },
            upstream: p.upstream,
            toxics: Vec::new(),
            resets,
            running: None,
            parked: None,
        };
        if p.enabled.unwrap_or(true) {
            self.start(&p.name, &mut e).await?;
        }
        let view = e.view(&p.name);
        self.proxies.insert(p.name, e);
        Ok(view)
    }

    /// Creates or replaces many proxies; all are validated before any changes. A proxy whose
    /// listen and upstream are unchanged is kept (with its toxics).
    pub async fn populate(&mut self, ps: Vec<NewProxy>) -> Result<Vec<Proxy>, Failure> {
        let mut names = BTreeSet::new();
        for (i, p) in ps.iter().enumerate() {
            check_new(p)
                .map_err(|f| Failure::new(f.status, format!("{} at proxy {}", f.message, i + 1)))?;
            if !names.insert(p.name.clone()) {
                return Err(Failure::bad_body(format!(
                    "duplicate proxy name '{}'",
                    p.name
                )));
            }
        }
        let new = names
            .iter()
            .filter(|n| !self.proxies.contains_key(*n))
            .count();
        if self.proxies.len() + new > MAX_PROXIES {
            return Err(Failure::bad_body(format!("at most {MAX_PROXIES} proxies")));
        }
        let mut out = Vec::with_capacity(ps.len());
        for p in ps {
            let keep = self.proxies.get(&p.name).is_some_and(|e| {
                e.upstream == p.upstream
                    && (p.listen.is_empty() || e.listen == p.listen || p.listen.ends_with(":0"))
            });
            if keep {
                let u = ProxyUpdate {
                    enabled: Some(p.enabled.unwrap_or(true)),
                    ..ProxyUpdate::default()
                };
                out.push(self.update(&p.name, u).await?);
            } else {
                if let Some(mut old) = self.proxies.remove(&p.name) {
                    Registry::stop(&mut old).await;
                }
                out.push(self.insert(p).await?);
            }
        }
        Ok(out)
    }

    /// Updates listen, upstream or enabled; a changed address restarts the proxy.
    pub async fn update(&mut self, name: &str, u: ProxyUpdate) -> Result<Proxy, Failure> {
        self.entry(name)?;
        if let Some(l) = &u.listen {
            parse_listen(l)?;
        }
        if let Some(up) = &u.upstream {
            check_upstream(up)?;
        }
        let Some(mut e) = self.proxies.remove(name) else {
            return Err(Failure::proxy_not_found(name));
        };
        let was_enabled = e.running.is_some();
        let enabled = u.enabled.unwrap_or(was_enabled);
        let moved = u.listen.as_ref().is_some_and(|l| *l != e.listen)
            || u.upstream.as_ref().is_some_and(|up| *up != e.upstream);
        if moved || !enabled {
            Registry::stop(&mut e).await;
        }
        if let Some(l) = u.listen {
            if l != e.listen {
                e.parked = None;
            }
            e.listen = l;
        }
        if let Some(up) = u.upstream {
            e.upstream = up;
        }
        let started = if enabled {
            self.start(name, &mut e).await
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
            .ok_or_else(|| Failure::proxy_not_found(name))?;
        Registry::stop(&mut e).await;
        Ok(())
    }

    /// A proxy's toxics.
    pub fn toxics(&self, name: &str) -> Result<Vec<Toxic>, Failure> {
        Ok(self.entry(name)?.view(name).toxics)
    }

    /// One toxic.
    pub fn toxic(&self, proxy: &str, toxic: &str) -> Result<Toxic, Failure> {
        self.entry(proxy)?
            .toxics
            .iter()
            .find(|t| t.name == toxic)
            .cloned()
            .ok_or_else(|| Failure::toxic_not_found(toxic))
    }

    /// Adds a toxic (409 if its name exists on the proxy).
    pub async fn add_toxic(&mut self, proxy: &str, t: Toxic) -> Result<Toxic, Failure> {
        check_name("toxic", &t.name)?;
        let e = self.entry_mut(proxy)?;
        if e.toxics.iter().any(|x| x.name == t.name) {
            return Err(Failure::new(StatusCode::CONFLICT, "toxic already exists"));
        }
        if e.toxics.len() >= MAX_TOXICS_PER_PROXY {
            return Err(Failure::bad_body(format!(
                "at most {MAX_TOXICS_PER_PROXY} toxics per proxy"
            )));
        }
        if let Some(r) = &e.running {
            r.engine.add(&t).await.map_err(engine_failure)?;
        }
        e.toxics.push(t.clone());
        e.publish_resets();
        Ok(t)
    }

    /// Updates a toxic's attributes or toxicity.
    pub async fn update_toxic(
        &mut self,
        proxy: &str,
        toxic: &str,
        u: ToxicUpdate,
    ) -> Result<Toxic, Failure> {
        let (e, i) = self.toxic_mut(proxy, toxic)?;
        let mut t = e.toxics[i].clone();
        t.kind = t.kind.updated(&u.attributes).map_err(Failure::bad_body)?;
        if let Some(x) = u.toxicity {
            if !(0.0..=1.0).contains(&x) {
                return Err(Failure::bad_body(format!(
                    "toxicity {x} must be between 0 and 1"
                )));
            }
            t.toxicity = x;
        }
        if let Some(r) = &e.running {
            r.engine.update(&t).await.map_err(engine_failure)?;
        }
        e.toxics[i] = t.clone();
        e.publish_resets();
        Ok(t)
    }

    /// Removes a toxic.
    pub async fn delete_toxic(&mut self, proxy: &str, toxic: &str) -> Result<(), Failure> {
        let (e, i) = self.toxic_mut(proxy, toxic)?;
        if let Some(r) = &e.running {
            r.engine
                .remove(&e.toxics[i])
                .await
                .map_err(engine_failure)?;
        }
        e.toxics.remove(i);
        e.publish_resets();
        Ok(())
    }

    /// Enables every proxy and removes every toxic.
    pub async fn reset(&mut self) -> Result<(), Failure> {
        let names: Vec<String> = self.proxies.keys().cloned().collect();
        for name in names {
            let toxics: Vec<String> = self.toxics(&name)?.into_iter().map(|t| t.name).collect();
            for t in toxics {
                self.delete_toxic(&name, &t).await?;
            }
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

fn engine_failure(msg: String) -> Failure {
    Failure::new(StatusCode::INTERNAL_SERVER_ERROR, msg)
}
