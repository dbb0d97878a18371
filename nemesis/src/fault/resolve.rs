//! Turning a plan into an active fault against the live cluster: choosing nodes and links from
//! the seeded RNG, finding leaders, listing proxies.

use std::collections::BTreeMap;

use anyhow::{bail, Context};
use rand::seq::SliceRandom;
use rand::RngCore;

use formats::Role;

use super::{toxic_of, ActiveFault, FaultPlan, Kind, Links, Realisation, Shape, Target};
use crate::control::{Control, Unsupported};
use crate::grudge::{self, Grudge};
use crate::leader;
use crate::links::Link;
use crate::toxiproxy::ToxiproxyClient;

fn pick(nodes: &[String], rng: &mut dyn RngCore) -> anyhow::Result<String> {
    nodes
        .choose(rng)
        .cloned()
        .context("the cluster has no nodes")
}

async fn node_of(
    ctl: &dyn Control,
    role: Role,
    target: &Target,
    rng: &mut (dyn RngCore + Send),
) -> anyhow::Result<String> {
    let nodes = ctl.nodes();
    match target {
        Target::Random => pick(&nodes, rng),
        Target::Node { node } if nodes.contains(node) => Ok(node.clone()),
        Target::Node { node } => bail!("no node '{node}' in the cluster ({})", nodes.join(", ")),
        Target::Leader => leader::find(ctl, role).await,
        Target::LeaderOf { role: of } => leader::find(ctl, *of).await,
    }
}

async fn grudge_of(
    ctl: &dyn Control,
    shape: &Shape,
    rng: &mut (dyn RngCore + Send),
) -> anyhow::Result<Grudge> {
    let nodes = ctl.nodes();
    if nodes.len() < 2 {
        bail!(
            "a partition needs at least 2 nodes, the cluster has {}",
            nodes.len()
        );
    }
    Ok(match shape {
        Shape::IsolateOne { node } => {
            let n = match node {
                Some(n) if nodes.contains(n) => n.clone(),
                Some(n) => bail!("no node '{n}' in the cluster"),
                None => pick(&nodes, rng)?,
            };
            grudge::isolate(&nodes, &n)
        }
        Shape::IsolateLeader { role } => grudge::isolate(&nodes, &leader::find(ctl, *role).await?),
        Shape::MajorityMinority { role } => {
            let leader = leader::find(ctl, *role).await.ok();
            grudge::majority_minority(&nodes, leader.as_deref(), rng)
        }
        Shape::RandomHalves => grudge::random_halves(&nodes, rng),
        Shape::Bridge if nodes.len() < 3 => bail!("a bridge needs at least 3 nodes"),
        Shape::Bridge => grudge::bridge(&nodes, rng),
    })
}

/// The fault proxy's links, sorted by proxy name.
async fn links(api: &str) -> anyhow::Result<Vec<(String, Link)>> {
    let c = ToxiproxyClient::new(api)?;
    Ok(c.proxies()
        .await?
        .into_keys()
        .filter_map(|name| Link::parse(&name).map(|l| (name, l)))
        .collect())
}

fn api_of(ctl: &dyn Control, what: &'static str) -> anyhow::Result<String> {
    ctl.proxy_api().ok_or(Unsupported(what)).context(
        "network faults need a fault proxy in front of the links (local cluster or --toxiproxy)",
    )
}

async fn partition(
    ctl: &dyn Control,
    shape: &Shape,
    rng: &mut (dyn RngCore + Send),
) -> anyhow::Result<ActiveFault> {
    let grudge = grudge_of(ctl, shape, rng).await?;
    let nodes = ctl.nodes();
    let ips: Option<BTreeMap<String, String>> = nodes
        .iter()
        .map(|n| ctl.node_ip(n).map(|ip| (n.clone(), ip)))
        .collect();
    let how = match (ips, ctl.proxy_api()) {
        (Some(ips), _) => Realisation::Iptables { ips },
        (None, Some(api)) => {
            let proxies: Vec<String> = links(&api)
                .await?
                .into_iter()
                .filter(|(_, l)| grudge::cuts(&grudge, &l.from, &l.to))
                .map(|(name, _)| name)
                .collect();
            if proxies.is_empty() {
                bail!("the fault proxy at {api} has no links between the partitioned nodes");
            }
            Realisation::Proxy { api, proxies }
        }
        (None, None) => {
            return Err(anyhow::Error::new(Unsupported("partitions"))
                .context("nodes have neither addresses for iptables nor a fault proxy"))
        }
    };
    Ok(ActiveFault::Partition {
        shape: shape.name().to_owned(),
        grudge,
        how,
    })
}

async fn toxics(
    ctl: &dyn Control,
    kind: Kind,
    links_wanted: &Links,
    toxic: crate::toxiproxy::Toxic,
    rng: &mut (dyn RngCore + Send),
) -> anyhow::Result<ActiveFault> {
    let api = api_of(ctl, "network faults")?;
    let all = links(&api).await?;
    let of_role = |role: Role| -> Vec<String> {
        all.iter()
            .filter(|(_, l)| l.role == role.as_str())
            .map(|(n, _)| n.clone())
            .collect()
    };
    let proxies = match links_wanted {
        Links::One { from, to, role } => {
            let name = crate::links::proxy_name(from, to, role.as_str());
            if !all.iter().any(|(n, _)| *n == name) {
                bail!("no proxied link {from}->{to}/{role} at {api}");
            }
            vec![name]
        }
        Links::RandomOne { role } => of_role(*role).choose(rng).cloned().into_iter().collect(),
        Links::Service { role } => of_role(*role),
        Links::Leaders { from_role, role } => {
            // Both may lead on one node: a node's calls to its own roles cross its own link.
            let from = leader::find(ctl, *from_role).await?;
            let to = leader::find(ctl, *role).await?;
            let name = crate::links::proxy_name(&from, &to, role.as_str());
            if !all.iter().any(|(n, _)| *n == name) {
                bail!("no proxied link {from}->{to}/{role} at {api}");
            }
            vec![name]
        }
    };
    if proxies.is_empty() {
        bail!("the fault proxy at {api} has no links matching {links_wanted:?}");
    }
    Ok(ActiveFault::Toxics {
        kind,
        api,
        proxies,
        toxic,
    })
}

/// Resolves `plan`; `id` names the toxics it adds (`nemesis-f3`).
pub(crate) async fn resolve(
    ctl: &dyn Control,
    plan: &FaultPlan,
    id: &str,
    rng: &mut (dyn RngCore + Send),
) -> anyhow::Result<ActiveFault> {
    let toxic_name = format!("nemesis-{id}");
    match plan {
        FaultPlan::Pause { role, target } | FaultPlan::Kill { role, target } => {
            let node = node_of(ctl, *role, target, rng).await?;
            let pid = ctl.pid(&node, *role).await?;
            let role = *role;
            Ok(match plan {
                FaultPlan::Kill { .. } => ActiveFault::Kill { node, role, pid },
                _ => ActiveFault::Pause { node, role, pid },
            })
        }
        FaultPlan::Partition { shape } => partition(ctl, shape, rng).await,
        FaultPlan::Network {
            effect,
            links,
            route,
        } => {
            let toxic = toxic_of(*effect, route.as_ref(), &toxic_name);
            toxics(ctl, effect.kind(), links, toxic, rng).await
        }
        FaultPlan::Storm { role, latency_ms } => {
            let effect = super::NetEffect::Latency {
                latency_ms: *latency_ms,
                jitter_ms: latency_ms / 4,
            };
            let links = Links::Service { role: *role };
            toxics(
                ctl,
                Kind::Storm,
                &links,
                toxic_of(effect, None, &toxic_name),
                rng,
            )
            .await
        }
    }
}
