//! `harness run --fault SPEC`: one fault with its target and timing, spelled as
//! `key=value` pairs, e.g. `kind=pause,role=order,node=leader,at=4s,for=5s`. Repeated, the
//! flag replaces the seeded schedule with exactly these faults; named scenarios are built from
//! it (`harness scenario list` prints theirs).
//!
//! Keys: `kind` (pause, kill, partition, latency, lost-response, reset, bandwidth, storm),
//! `at` and `for` (durations from the start of the workload), and per kind:
//! - pause, kill: `role`, `node` = `leader` (default) | `random` | `leader-of:<role>` | a node;
//! - partition: `shape` = isolate-one | isolate-leader | majority-minority | random-halves |
//!   bridge, `role` (whose leader; default order), `node` (isolate-one);
//! - latency, lost-response, reset, bandwidth: `role` (the service called), `links` = `all`
//!   (default) | `random` | `leaders:<calling role>` | `<from>-><to>`; latency: `latency`,
//!   `jitter`; bandwidth: `kbps`;
//! - storm: `role`, `latency` (default 2500ms, past the callers' 2 s timeout).

use std::collections::BTreeMap;
use std::time::Duration;

use nemesis::fault::{FaultPlan, Links, NetEffect, Target};
use nemesis::grudge::Shape;
use nemesis::schedule::Planned;

/// Most `--fault` flags one run takes.
pub const MAX_FAULTS: usize = 64;
/// Most keys one spec holds.
const MAX_KEYS: usize = 12;
/// Default added delay of a latency fault.
const DEFAULT_LATENCY: Duration = Duration::from_millis(500);
/// Default added delay of a storm: past the callers' 2 s attempt timeout, so every attempt
/// times out and is retried.
const DEFAULT_STORM_LATENCY: Duration = Duration::from_millis(2500);
/// Largest delay a latency or storm toxic may add.
const MAX_LATENCY: Duration = Duration::from_secs(60);

/// One parsed `--fault`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultSpec {
    /// The spelling it was parsed from (kept for `spec.json` and the rerun command).
    pub text: String,
    /// The planned fault.
    pub planned: Planned,
}

impl std::str::FromStr for FaultSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<FaultSpec, String> {
        parse(s)
    }
}

/// True for a role the pipeline runs (`harness::cluster::pipeline::ROLES`).
fn is_role(s: &str) -> bool {
    crate::cluster::pipeline::ROLES.contains(&s)
}

/// The error for a name that is not a role.
fn not_a_role(what: &str, r: &str) -> String {
    format!(
        "{what} '{r}' is not a role (roles: {})",
        crate::cluster::pipeline::ROLES.join(", ")
    )
}

fn ok_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Parses one spec; errors quote the culprit.
pub fn parse(text: &str) -> Result<FaultSpec, String> {
    let mut keys: BTreeMap<&str, &str> = BTreeMap::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((k, v)) = part.split_once('=') else {
            return Err(format!("--fault '{text}': '{part}' is not key=value"));
        };
        if keys.len() >= MAX_KEYS || keys.insert(k.trim(), v.trim()).is_some() {
            return Err(format!(
                "--fault '{text}': key '{k}' repeated or too many keys"
            ));
        }
    }
    let mut take = |k: &str| keys.remove(k);
    let err = |msg: String| format!("--fault '{text}': {msg}");
    let kind = take("kind").ok_or_else(|| err("needs kind=...".into()))?;
    let duration = |k: &str, v: Option<&str>| -> Result<Duration, String> {
        let v = v.ok_or_else(|| err(format!("needs {k}=<duration>")))?;
        crate::duration::parse(v).map_err(|e| err(format!("{k}: {e}")))
    };
    let at = duration("at", take("at"))?;
    let length = duration("for", take("for"))?;
    if length.is_zero() {
        return Err(err("for=0: a fault must last".into()));
    }
    let role = take("role");
    let role_named = |what: &str| -> Result<String, String> {
        match role {
            Some(r) if is_role(r) => Ok(r.to_owned()),
            Some(r) => Err(err(not_a_role("role", r))),
            None => Err(err(format!("{what} needs role=<role>"))),
        }
    };
    let delay = |k: &str, v: Option<&str>, default: Duration| -> Result<u64, String> {
        let d = match v {
            Some(v) => crate::duration::parse(v).map_err(|e| err(format!("{k}: {e}")))?,
            None => default,
        };
        if d > MAX_LATENCY {
            return Err(err(format!("{k}: at most {MAX_LATENCY:?}")));
        }
        Ok(d.as_millis() as u64)
    };
    let plan = match kind {
        "pause" | "kill" => {
            let role = role_named(kind)?;
            let target = target(take("node").unwrap_or("leader")).map_err(err)?;
            if kind == "pause" {
                FaultPlan::Pause { role, target }
            } else {
                FaultPlan::Kill { role, target }
            }
        }
        "partition" => {
            let whose = role.unwrap_or("order").to_owned();
            if !is_role(&whose) {
                return Err(err(not_a_role("role", &whose)));
            }
            let shape = match take("shape").unwrap_or("isolate-leader") {
                "isolate-one" => Shape::IsolateOne {
                    node: take("node").map(str::to_owned),
                },
                "isolate-leader" => Shape::IsolateLeader { role: whose },
                "majority-minority" => Shape::MajorityMinority { role: whose },
                "random-halves" => Shape::RandomHalves,
                "bridge" => Shape::Bridge,
                other => {
                    return Err(err(format!(
                        "shape '{other}' (expected isolate-one, isolate-leader, majority-minority, random-halves or bridge)"
                    )))
                }
            };
            FaultPlan::Partition { shape }
        }
        "latency" | "lost-response" | "reset" | "bandwidth" => {
            let role = role_named(kind)?;
            let links = links(take("links").unwrap_or("all"), &role).map_err(err)?;
            let effect = match kind {
                "latency" => {
                    let latency_ms = delay("latency", take("latency"), DEFAULT_LATENCY)?;
                    let jitter_ms = delay("jitter", take("jitter"), Duration::ZERO)?;
                    NetEffect::Latency {
                        latency_ms,
                        jitter_ms: jitter_ms.min(latency_ms),
                    }
                }
                "bandwidth" => {
                    let v = take("kbps").unwrap_or("16");
                    let rate_kbps: u64 = v
                        .parse()
                        .ok()
                        .filter(|n| (1..=1_000_000).contains(n))
                        .ok_or_else(|| err(format!("kbps '{v}': 1 to 1000000")))?;
                    NetEffect::Bandwidth { rate_kbps }
                }
                "reset" => NetEffect::Reset,
                _ => NetEffect::LostResponse,
            };
            FaultPlan::Network { effect, links }
        }
        "storm" => FaultPlan::Storm {
            role: role_named(kind)?,
            latency_ms: delay("latency", take("latency"), DEFAULT_STORM_LATENCY)?,
        },
        other => {
            return Err(err(format!(
                "kind '{other}' (expected pause, kill, partition, latency, lost-response, reset, bandwidth or storm)"
            )))
        }
    };
    if let Some(k) = keys.keys().next() {
        return Err(err(format!("key '{k}' does not apply to kind={kind}")));
    }
    Ok(FaultSpec {
        text: text.trim().to_owned(),
        planned: Planned {
            at,
            duration: length,
            plan,
        },
    })
}

impl FaultSpec {
    /// The node names this fault names explicitly (a node target, the node an isolate-one
    /// partition cuts off, the ends of a named link), to be checked against the cluster's.
    pub fn named_nodes(&self) -> Vec<String> {
        match &self.planned.plan {
            FaultPlan::Pause {
                target: Target::Node { node },
                ..
            }
            | FaultPlan::Kill {
                target: Target::Node { node },
                ..
            } => vec![node.clone()],
            FaultPlan::Partition {
                shape: Shape::IsolateOne { node: Some(node) },
            } => vec![node.clone()],
            FaultPlan::Network {
                links: Links::One { from, to, .. },
                ..
            } => vec![from.clone(), to.clone()],
            _ => Vec::new(),
        }
    }
}

/// Checks that every node the faults name is one of `nodes`; the error names the fault.
pub fn check_nodes(faults: &[FaultSpec], nodes: &[String]) -> Result<(), String> {
    for f in faults {
        if let Some(n) = f.named_nodes().into_iter().find(|n| !nodes.contains(n)) {
            return Err(format!(
                "--fault '{}': node '{n}' is not in the cluster (nodes: {})",
                f.text,
                nodes.join(", ")
            ));
        }
    }
    Ok(())
}

fn target(v: &str) -> Result<Target, String> {
    Ok(match v {
        "leader" => Target::Leader,
        "random" => Target::Random,
        _ => match v.strip_prefix("leader-of:") {
            Some(role) if is_role(role) => Target::LeaderOf {
                role: role.to_owned(),
            },
            Some(role) => return Err(not_a_role("node=leader-of:", role)),
            None if ok_name(v) => Target::Node { node: v.to_owned() },
            None => return Err(format!("node '{v}' is not a node name")),
        },
    })
}

fn links(v: &str, role: &str) -> Result<Links, String> {
    let role = role.to_owned();
    Ok(match v {
        "all" => Links::Service { role },
        "random" => Links::RandomOne { role },
        _ => {
            if let Some(from_role) = v.strip_prefix("leaders:") {
                if !is_role(from_role) {
                    return Err(not_a_role("links=leaders:", from_role));
                }
                Links::Leaders {
                    from_role: from_role.to_owned(),
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

/// The time after the start of the workload when the last of `specs` is healed.
pub fn last_heal(specs: &[FaultSpec]) -> Duration {
    specs
        .iter()
        .map(|s| s.planned.at + s.planned.duration)
        .max()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves the spellings scenarios use parse to the planned faults they mean, and that
    /// mistakes are refused with the culprit quoted.
    #[test]
    fn parses_faults_and_refuses_mistakes() {
        let p =
            parse("kind=pause,role=payment,node=leader-of:order,at=1s,for=3500ms").expect("pause");
        assert_eq!(p.planned.at, Duration::from_secs(1));
        assert_eq!(p.planned.duration, Duration::from_millis(3500));
        assert_eq!(
            p.planned.plan,
            FaultPlan::Pause {
                role: "payment".into(),
                target: Target::LeaderOf {
                    role: "order".into()
                }
            }
        );
        let l = parse("kind=lost-response,role=payment,links=leaders:order,at=6s,for=9s")
            .expect("lost response");
        assert_eq!(
            l.planned.plan,
            FaultPlan::Network {
                effect: NetEffect::LostResponse,
                links: Links::Leaders {
                    from_role: "order".into(),
                    role: "payment".into()
                }
            }
        );
        let s = parse("kind=storm,role=payment,at=6s,for=8s").expect("storm");
        assert_eq!(
            s.planned.plan,
            FaultPlan::Storm {
                role: "payment".into(),
                latency_ms: 2500
            }
        );
        let n = parse("kind=latency,role=payment,links=n1->n2,latency=300ms,at=1s,for=1s")
            .expect("one link");
        assert!(matches!(
            n.planned.plan,
            FaultPlan::Network {
                links: Links::One { .. },
                effect: NetEffect::Latency {
                    latency_ms: 300,
                    ..
                }
            }
        ));
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
        ] {
            let e = parse(bad).expect_err(bad);
            assert!(e.contains(culprit), "{bad}: {e}");
        }
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
