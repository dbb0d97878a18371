//! `POST /populate` with Toxiproxy's semantics: every proxy is checked first (a malformed one
//! changes nothing); then, in order, a proxy whose listen address (compared after resolving
//! names, so `localhost:80` is `127.0.0.1:80`) and upstream are unchanged is kept as it is, with
//! its toxics and connections, and any other is created or replaced, up to the first that fails.
//! The answer lists what was created or kept, and the failure if there was one.

use std::collections::BTreeSet;

use super::check::{check_new, resolve_listen, Failure};
use super::{Registry, MAX_PROXIES};
use crate::api::{NewProxy, Proxy};

/// What `/populate` did.
#[derive(Debug)]
pub struct Populated {
    /// The proxies created or kept, in request order, up to the failure.
    pub proxies: Vec<Proxy>,
    /// Why the next one could not be created.
    pub failure: Option<Failure>,
}

impl Registry {
    /// Creates, replaces or keeps `ps` (see the module doc).
    pub async fn populate(&mut self, ps: Vec<NewProxy>) -> Result<Populated, Failure> {
        let mut names = BTreeSet::new();
        let mut listens = Vec::with_capacity(ps.len());
        for (i, p) in ps.iter().enumerate() {
            listens.push(check_new(p).map_err(|f| f.at_proxy(i))?);
            if !names.insert(p.name.clone()) {
                return Err(
                    Failure::bad_body(format!("duplicate proxy name '{}'", p.name)).at_proxy(i),
                );
            }
        }
        let new = names
            .iter()
            .filter(|n| !self.proxies.contains_key(*n))
            .count();
        if self.proxies.len() + new > MAX_PROXIES {
            return Err(Failure::bad_body(format!("at most {MAX_PROXIES} proxies")));
        }
        let mut proxies = Vec::with_capacity(ps.len());
        for (p, listen) in ps.into_iter().zip(listens) {
            let existing = self.proxies.get(&p.name).map(|e| {
                let same_listen = resolve_listen(&e.listen).ok() == Some(listen);
                (same_listen, same_listen && e.upstream == p.upstream)
            });
            match existing {
                Some((_, true)) => {
                    proxies.push(self.get(&p.name)?);
                    continue;
                }
                Some((same_listen, false)) => {
                    let name = p.name.clone();
                    let Some(mut old) = self.proxies.remove(&name) else {
                        unreachable!("just looked up");
                    };
                    Registry::stop(&mut old).await;
                    let parked = if same_listen { old.parked.take() } else { None };
                    match self.insert(p, parked) {
                        Ok(v) => proxies.push(v),
                        Err(f) => {
                            // As in Toxiproxy, the old proxy stays, stopped.
                            self.proxies.insert(name, old);
                            return Ok(Populated {
                                proxies,
                                failure: Some(f),
                            });
                        }
                    }
                }
                None => match self.insert(p, None) {
                    Ok(v) => proxies.push(v),
                    Err(f) => {
                        return Ok(Populated {
                            proxies,
                            failure: Some(f),
                        })
                    }
                },
            }
        }
        Ok(Populated {
            proxies,
            failure: None,
        })
    }
}
