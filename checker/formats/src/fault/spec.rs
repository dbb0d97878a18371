//! The `--fault` language: one fault with its target and timing as `key=value` pairs, e.g.
//! `kind=pause,role=order,node=leader,at=4s,for=5s`. [`Planned`]'s `FromStr` reads it and its
//! `Display` writes the canonical spelling, which reads back as the same fault.
//!
//! Keys: `kind` (pause, kill, partition, latency, lost-response, reset, bandwidth, storm),
//! `at` and `for` (durations from the start of the workload), and per kind:
//! - pause, kill: `role`, `node` = `leader` (default) | `random` | `leader-of:<role>` | a node;
//! - partition: `shape` = isolate-one | isolate-leader (default) | majority-minority |
//!   random-halves | bridge, `role` (whose leader; default order), `node` (isolate-one);
//! - latency, lost-response, reset, bandwidth: `role` (the service called), `links` = `all`
//!   (default) | `random` | `leaders:<calling role>` | `<from>-><to>`; latency: `latency`,
//!   `jitter`; bandwidth: `kbps`; latency, lost-response and reset may name a `path` (a prefix,
//!   from `/`) and a `method` to act on those HTTP exchanges only;
//! - storm: `role`, `latency` (default 2500ms, past the callers' 2 s timeout).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::{FaultPlan, Kind, Links, NetEffect, Planned, Route, Shape, Target};
use crate::duration;
use crate::role::Role;

/// Most keys one spec holds.
const MAX_KEYS: usize = 12;
/// Default added delay of a latency fault.
pub const DEFAULT_LATENCY: Duration = Duration::from_millis(500);
/// Default added delay of a storm: past the callers' 2 s attempt timeout, so every attempt
/// times out and is retried.
pub const DEFAULT_STORM_LATENCY: Duration = Duration::from_millis(2500);
/// Largest delay a latency or storm toxic may add.
pub const MAX_LATENCY: Duration = Duration::from_secs(60);
/// Default bandwidth of a bandwidth fault, KB/s.
pub const DEFAULT_KBPS: u64 = 16;
/// Largest bandwidth, KB/s.
pub const MAX_KBPS: u64 = 1_000_000;

/// True for a name a node or link part may have.
pub fn ok_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

struct Keys<'a> {
    text: &'a str,
    map: BTreeMap<&'a str, &'a str>,
}

impl<'a> Keys<'a> {
    fn parse(text: &'a str) -> Result<Keys<'a>, String> {
        let mut map = BTreeMap::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((k, v)) = part.split_once('=') else {
                return Err(format!("--fault '{text}': '{part}' is not key=value"));
            };
            if map.len() >= MAX_KEYS || map.insert(k.trim(), v.trim()).is_some() {
                return Err(format!(
                    "--fault '{text}': key '{k}' repeated or too many keys"
                ));
            }
        }
        Ok(Keys { text, map })
    }

    fn err(&self, msg: impl fmt::Display) -> String {
        format!("--fault '{}': {msg}", self.text)
    }

    fn take(&mut self, k: &str) -> Option<&'a str> {
        self.map.remove(k)
    }

    fn duration(&mut self, k: &str) -> Result<Duration, String> {
        let v = self
            .take(k)
            .ok_or_else(|| self.err(format!("needs {k}=<duration>")))?;
        duration::parse(v).map_err(|e| self.err(format!("{k}: {e}")))
    }

    fn delay_ms(&mut self, k: &str, default: Duration) -> Result<u64, String> {
        let d = match self.take(k) {
            Some(v) => duration::parse(v).map_err(|e| self.err(format!("{k}: {e}")))?,
            None => default,
        };
        if d > MAX_LATENCY {
            return Err(self.err(format!("{k}: at most {}", duration::spell(MAX_LATENCY))));
        }
        Ok(d.as_millis() as u64)
    }

    fn role(&self, role: Option<&str>, what: Kind) -> Result<Role, String> {
        match role {
            Some(r) => r.parse().map_err(|e| self.err(format!("role {e}"))),
            None => Err(self.err(format!("{what} needs role=<role>"))),
        }
    }
}

impl FromStr for Planned {
    type Err = String;

    fn from_str(text: &str) -> Result<Planned, String> {
        let mut keys = Keys::parse(text)?;
        let kind_text = keys
            .take("kind")
            .ok_or_else(|| keys.err("needs kind=..."))?;
        let kind: Kind = kind_text.parse().map_err(|_| {
            keys.err(format!(
                "kind '{kind_text}' (expected pause, kill, partition, latency, lost-response, reset, bandwidth or storm)"
            ))
        })?;
        let at = keys.duration("at")?;
        let length = keys.duration("for")?;
        if length.is_zero() {
            return Err(keys.err("for=0: a fault must last"));
        }
        let role = keys.take("role");
        let plan = plan(&mut keys, kind, role)?;
        if let Some(k) = keys.map.keys().next() {
            return Err(keys.err(format!("key '{k}' does not apply to kind={kind}")));
        }
        Ok(Planned {
            at,
            duration: length,
            plan,
        })
    }
}

fn plan(keys: &mut Keys<'_>, kind: Kind, role: Option<&str>) -> Result<FaultPlan, String> {
    Ok(match kind {
        Kind::Pause | Kind::Kill => {
            let role = keys.role(role, kind)?;
            let node = keys.take("node").unwrap_or("leader");
            let target = target(node).map_err(|e| keys.err(e))?;
            if kind == Kind::Pause {
                FaultPlan::Pause { role, target }
            } else {
                FaultPlan::Kill { role, target }
            }
        }
        Kind::Partition => {
            let whose: Role = role
                .unwrap_or("order")
                .parse()
                .map_err(|e| keys.err(format!("role {e}")))?;
            let shape = match keys.take("shape").unwrap_or("isolate-leader") {
                "isolate-one" => Shape::IsolateOne {
                    node: keys.take("node").map(str::to_owned),
                },
                "isolate-leader" => Shape::IsolateLeader { role: whose },
                "majority-minority" => Shape::MajorityMinority { role: whose },
                "random-halves" => Shape::RandomHalves,
                "bridge" => Shape::Bridge,
                other => {
                    return Err(keys.err(format!(
                        "shape '{other}' (expected isolate-one, isolate-leader, majority-minority, random-halves or bridge)"
                    )))
                }
            };
            if let Shape::IsolateOne { node: Some(n) } = &shape {
                if !ok_name(n) {
                    return Err(keys.err(format!("node '{n}' is not a node name")));
                }
            }
            FaultPlan::Partition { shape }
        }
        Kind::Latency | Kind::LostResponse | Kind::Reset | Kind::Bandwidth => {
            let role = keys.role(role, kind)?;
            let links_text = keys.take("links").unwrap_or("all");
            let links = links(links_text, role).map_err(|e| keys.err(e))?;
            let effect = match kind {
                Kind::Latency => {
                    let latency_ms = keys.delay_ms("latency", DEFAULT_LATENCY)?;
                    let jitter_ms = keys.delay_ms("jitter", Duration::ZERO)?;
                    NetEffect::Latency {
                        latency_ms,
                        jitter_ms: jitter_ms.min(latency_ms),
                    }
                }
                Kind::Bandwidth => {
                    let v = keys.take("kbps");
                    let rate_kbps = match v {
                        None => DEFAULT_KBPS,
                        Some(v) => v
                            .parse()
                            .ok()
                            .filter(|n| (1..=MAX_KBPS).contains(n))
                            .ok_or_else(|| keys.err(format!("kbps '{v}': 1 to {MAX_KBPS}")))?,
                    };
                    NetEffect::Bandwidth { rate_kbps }
                }
                Kind::Reset => NetEffect::Reset,
                _ => NetEffect::LostResponse,
            };
            let route = route(keys, kind)?;
            FaultPlan::Network {
                effect,
                links,
                route,
            }
        }
        Kind::Storm => FaultPlan::Storm {
            role: keys.role(role, kind)?,
            latency_ms: keys.delay_ms("latency", DEFAULT_STORM_LATENCY)?,
        },
    })
}

impl FromStr for Target {
    type Err = String;

    /// `leader`, `random`, `leader-of:<role>` or a node name.
    fn from_str(s: &str) -> Result<Target, String> {
        target(s)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&spell_target(self))
    }
}

fn target(v: &str) -> Result<Target, String> {
    Ok(match v {
        "leader" => Target::Leader,
        "random" => Target::Random,
        _ => match v.strip_prefix("leader-of:") {
            Some(role) => Target::LeaderOf {
                role: role.parse().map_err(|e| format!("node=leader-of: {e}"))?,
            },
            None if ok_name(v) => Target::Node { node: v.to_owned() },
            None => return Err(format!("node '{v}' is not a node name")),
        },
    })
}

fn links(v: &str, role: Role) -> Result<Links, String> {
    Ok(match v {
        "all" => Links::Service { role },
        "random" => Links::RandomOne { role },
        _ => {
            if let Some(from_role) = v.strip_prefix("leaders:") {
                Links::Leaders {
                    from_role: from_role
                        .parse()
                        .map_err(|e| format!("links=leaders: {e}"))?,
                    role,
                }
            } else if let Some((from, to)) = v.split_once("->") {
                if !(ok_name(from) && ok_name(to)) {
                    return Err(format!("links '{v}': expected <from>-><to> node names"));
                }
                Links::One {
                    from: from.to_owned(),
                    to: to.to_owned(),
                    role,
                }
            } else {
                return Err(format!(
                    "links '{v}' (expected all, random, leaders:<role> or <from>-><to>)"
                ));
            }
        }
    })
}

/// Longest `path` a route takes.
pub const MAX_ROUTE_PATH: usize = 256;

fn route(keys: &mut Keys<'_>, kind: Kind) -> Result<Option<Route>, String> {
    let method = keys.take("method");
    let path = keys.take("path");
    let Some(path) = path else {
        return match method {
            Some(_) => Err(keys.err("method= needs path=<prefix>")),
            None => Ok(None),
        };
    };
    if kind == Kind::Bandwidth {
        return Err(keys.err("bandwidth acts on bytes, not on one route (drop path=)"));
    }
    if !path.starts_with('/')
        || path.len() > MAX_ROUTE_PATH
        || path
            .chars()
            .any(|c| c.is_whitespace() || c == ',' || c.is_control())
    {
        return Err(keys.err(format!(
            "path '{path}': a prefix from '/', without spaces or commas"
        )));
    }
    if let Some(m) = method {
        if m.is_empty() || m.len() > 16 || !m.chars().all(|c| c.is_ascii_uppercase()) {
            return Err(keys.err(format!("method '{m}': an HTTP method such as POST")));
        }
    }
    Ok(Some(Route {
        method: method.map(str::to_owned),
        path: path.to_owned(),
    }))
}

fn spell_target(t: &Target) -> String {
    match t {
        Target::Leader => "leader".into(),
        Target::Random => "random".into(),
        Target::Node { node } => node.clone(),
        Target::LeaderOf { role } => format!("leader-of:{role}"),
    }
}

fn spell_links(l: &Links) -> String {
    match l {
        Links::Service { .. } => "all".into(),
        Links::RandomOne { .. } => "random".into(),
        Links::Leaders { from_role, .. } => format!("leaders:{from_role}"),
        Links::One { from, to, .. } => format!("{from}->{to}"),
    }
}

impl fmt::Display for Planned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |m: u64| duration::spell(Duration::from_millis(m));
        let mut parts = vec![format!("kind={}", self.plan.kind())];
        match &self.plan {
            FaultPlan::Pause { role, target } | FaultPlan::Kill { role, target } => {
                parts.push(format!("role={role}"));
                parts.push(format!("node={}", spell_target(target)));
            }
            FaultPlan::Partition { shape } => {
                parts.push(format!("shape={}", shape.name()));
                match shape {
                    Shape::IsolateLeader { role } | Shape::MajorityMinority { role } => {
                        parts.push(format!("role={role}"))
                    }
                    Shape::IsolateOne { node: Some(n) } => parts.push(format!("node={n}")),
                    _ => {}
                }
            }
            FaultPlan::Network {
                effect,
                links,
                route,
            } => {
                parts.push(format!("role={}", links.role()));
                parts.push(format!("links={}", spell_links(links)));
                if let Some(r) = route {
                    if let Some(m) = &r.method {
                        parts.push(format!("method={m}"));
                    }
                    parts.push(format!("path={}", r.path));
                }
                match effect {
                    NetEffect::Latency {
                        latency_ms,
                        jitter_ms,
                    } => {
                        parts.push(format!("latency={}", ms(*latency_ms)));
                        if *jitter_ms > 0 {
                            parts.push(format!("jitter={}", ms(*jitter_ms)));
                        }
                    }
                    NetEffect::Bandwidth { rate_kbps } => parts.push(format!("kbps={rate_kbps}")),
                    NetEffect::LostResponse | NetEffect::Reset => {}
                }
            }
            FaultPlan::Storm { role, latency_ms } => {
                parts.push(format!("role={role}"));
                parts.push(format!("latency={}", ms(*latency_ms)));
            }
        }
        parts.push(format!("at={}", duration::spell(self.at)));
        parts.push(format!("for={}", duration::spell(self.duration)));
        f.write_str(&parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::{check_nodes, last_heal};

    fn parse(s: &str) -> Result<Planned, String> {
        s.parse()
    }

    /// Proves the spellings scenarios use parse to the planned faults they mean, and that
    /// mistakes are refused with the culprit quoted.
    #[test]
    fn parses_faults_and_refuses_mistakes() {
        let p =
            parse("kind=pause,role=payment,node=leader-of:order,at=1s,for=3500ms").expect("pause");
        assert_eq!(p.at, Duration::from_secs(1));
        assert_eq!(p.duration, Duration::from_millis(3500));
        assert_eq!(
            p.plan,
            FaultPlan::Pause {
                role: Role::Payment,
                target: Target::LeaderOf { role: Role::Order }
            }
        );
        let l = parse("kind=lost-response,role=payment,links=leaders:order,at=6s,for=9s")
            .expect("lost response");
        assert_eq!(
            l.plan,
            FaultPlan::Network {
                effect: NetEffect::LostResponse,
                links: Links::Leaders {
                    from_role: Role::Order,
                    role: Role::Payment
                },
                route: None,
            }
        );
        let s = parse("kind=storm,role=payment,at=6s,for=8s").expect("storm");
        assert_eq!(
            s.plan,
            FaultPlan::Storm {
                role: Role::Payment,
                latency_ms: 2500
            }
        );
        assert_eq!(last_heal(&[p, l, s]), Duration::from_secs(15));
        for (bad, culprit) in [
            ("kind=pause,at=1s,for=1s", "role="),
            ("kind=frob,role=x,at=1s,for=1s", "'frob'"),
            ("kind=pause,role=order,at=1s", "for="),
            ("kind=pause,role=order,at=soon,for=1s", "'soon'"),
            ("kind=pause,role=order,at=1s,for=1s,links=all", "'links'"),
            ("kind=storm,role=payment,latency=2h,at=1s,for=1s", "latency"),
            ("kind=pause,role=order,node=a b,at=1s,for=1s", "'a b'"),
            ("pause", "'pause'"),
            ("kind=pause,role=nope,at=1s,for=1s", "'nope' is not a role"),
            (
                "kind=pause,role=payment,node=leader-of:x,at=1s,for=1s",
                "'x' is not a role",
            ),
            (
                "kind=partition,role=ordr,at=1s,for=1s",
                "'ordr' is not a role",
            ),
            (
                "kind=latency,role=payment,links=leaders:y,at=1s,for=1s",
                "'y' is not a role",
            ),
            ("kind=pause,role=order,at=1s,for=0s", "for=0"),
            ("kind=bandwidth,role=payment,kbps=0,at=1s,for=1s", "kbps"),
            (
                "kind=bandwidth,role=payment,path=/x,at=1s,for=1s",
                "bandwidth",
            ),
            (
                "kind=reset,role=payment,method=POST,at=1s,for=1s",
                "needs path",
            ),
            (
                "kind=reset,role=payment,path=refund,at=1s,for=1s",
                "'refund'",
            ),
            (
                "kind=reset,role=payment,path=/r,method=post,at=1s,for=1s",
                "'post'",
            ),
            ("kind=pause,role=order,path=/r,at=1s,for=1s", "'path'"),
        ] {
            let e = parse(bad).expect_err(bad);
            assert!(e.contains(culprit), "{bad}: {e}");
        }
    }

    /// Proves the canonical spelling reads back as the same fault for every kind, shape,
    /// target and link choice, and that a hand spelling normalizes to it.
    #[test]
    fn every_fault_spells_back() {
        for text in [
            "kind=pause,role=order,node=leader,at=3s,for=4s",
            "kind=kill,role=store,node=n2,at=1500ms,for=2s",
            "kind=pause,role=payment,node=leader-of:order,at=1s,for=3500ms",
            "kind=kill,role=shipping,node=random,at=0s,for=1m",
            "kind=partition,shape=isolate-one,at=1s,for=1s",
            "kind=partition,shape=isolate-one,node=n3,at=1s,for=1s",
            "kind=partition,shape=isolate-leader,role=payment,at=1s,for=1s",
            "kind=partition,shape=majority-minority,role=order,at=1s,for=1s",
            "kind=partition,shape=random-halves,at=1s,for=1s",
            "kind=partition,shape=bridge,at=1s,for=1s",
            "kind=latency,role=payment,links=all,latency=300ms,jitter=30ms,at=1s,for=1s",
            "kind=latency,role=inventory,links=n1->n2,latency=1s,at=1s,for=1s",
            "kind=lost-response,role=payment,links=leaders:order,at=6s,for=9s",
            "kind=reset,role=shipping,links=random,at=6s,for=9s",
            "kind=bandwidth,role=payment,links=all,kbps=64,at=6s,for=9s",
            "kind=storm,role=payment,latency=2500ms,at=5s,for=5s",
            "kind=lost-response,role=payment,links=all,method=POST,path=/refund,at=1s,for=2s",
            "kind=latency,role=payment,links=n1->n1,path=/charge,latency=300ms,at=1s,for=2s",
            "kind=reset,role=shipping,links=all,method=POST,path=/ship,at=1s,for=2s",
        ] {
            let p = parse(text).expect(text);
            assert_eq!(p.to_string(), text, "canonical");
            assert_eq!(parse(&p.to_string()), Ok(p.clone()), "{text}");
            let json = serde_json::to_string(&p).expect("serializes");
            assert_eq!(serde_json::from_str::<Planned>(&json).expect("reads"), p);
        }
        let hand = parse(" kind=pause , role=order, at=3000ms,for=4s").expect("hand");
        assert_eq!(
            hand.to_string(),
            "kind=pause,role=order,node=leader,at=3s,for=4s"
        );
    }

    /// Proves nodes a fault names are checked against the cluster's: a node target, the node
    /// an isolate-one partition cuts off and both ends of a named link; faults naming no node
    /// always pass.
    #[test]
    fn named_nodes_must_be_in_the_cluster() {
        let nodes: Vec<String> = ["n1", "n2", "n3"].map(String::from).to_vec();
        let spec = |t: &str| parse(t).expect(t);
        for good in [
            "kind=pause,role=payment,node=n3,at=1s,for=1s",
            "kind=partition,shape=isolate-one,node=n2,at=1s,for=1s",
            "kind=latency,role=payment,links=n1->n2,at=1s,for=1s",
            "kind=pause,role=order,node=leader,at=1s,for=1s",
        ] {
            assert_eq!(check_nodes(&[spec(good)], &nodes), Ok(()), "{good}");
        }
        for (bad, node) in [
            ("kind=kill,role=payment,node=n9,at=1s,for=1s", "n9"),
            (
                "kind=partition,shape=isolate-one,node=n4,at=1s,for=1s",
                "n4",
            ),
            ("kind=reset,role=payment,links=n1->n7,at=1s,for=1s", "n7"),
        ] {
            let e = check_nodes(&[spec(bad)], &nodes).expect_err(bad);
            assert!(
                e.contains(&format!("'{node}' is not in the cluster")),
                "{e}"
            );
        }
    }
}
