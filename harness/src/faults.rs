//! The run's nemesis: builds the seeded schedule from `--nemesis` and drives it (starts and heals
//! at their times, two at once in pairs mode), telling the workload when a retry storm wants
//! eager clients.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use formats::fault::{Kind, Planned};
use formats::Role;
use nemesis::schedule;
use nemesis::{Control, Nemesis, Recorder};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tokio::sync::{watch, Mutex};

use formats::spec::RunConfig;

/// Slot length of periodic schedules when `--nemesis-interval` is not given.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);

/// Whether the run needs link proxies (network faults, local partitions, or `--toxiproxy`).
pub fn needs_proxies(args: &RunConfig) -> bool {
    let explicit = args.faults.iter().any(|f| f.plan.needs_proxy());
    args.toxiproxy.is_some()
        || explicit
        || (args.faults.is_empty()
            && args
                .nemesis
                .0
                .iter()
                .any(|k| k.needs_proxy() || *k == Kind::Partition))
}

/// The run's schedule: the `--fault` flags as given, else one seeded pause for a lone `pause` without an interval (the walking
/// skeleton's behaviour), a periodic schedule otherwise; `--fault-at` moves the first slot
/// (and the rest with it), `--fault-for` sets every duration.
pub fn plan(args: &RunConfig, seed: u64, nodes: usize) -> Vec<Planned> {
    if !args.faults.is_empty() {
        let mut planned: Vec<Planned> = args.faults.clone();
        planned.sort_by_key(|p| p.at);
        return planned;
    }
    let kinds = &args.nemesis.0;
    let mut planned = if kinds.is_empty() {
        Vec::new()
    } else if kinds.len() == 1 && kinds.contains(&Kind::Pause) && args.nemesis_interval.is_none() {
        schedule::single_pause(
            seed,
            args.time_limit,
            args.pause_role,
            args.pause_target.clone(),
        )
    } else {
        let roles: Vec<Role> = Role::ALL.to_vec();
        let leader_role = args.leader_role();
        let services = roles
            .iter()
            .filter(|r| **r != Role::Order)
            .copied()
            .collect();
        schedule::periodic(
            seed,
            &schedule::Options {
                kinds: kinds.clone(),
                interval: args.nemesis_interval.unwrap_or(DEFAULT_INTERVAL),
                time_limit: args.time_limit,
                pairs: args.nemesis_pairs,
                roles,
                services,
                leader_role,
                nodes,
            },
        )
    };
    if let (Some(at), Some(first)) = (args.fault_at, planned.first().map(|p| p.at)) {
        for p in &mut planned {
            p.at = p.at - first + at;
        }
    }
    if let Some(d) = args.fault_for {
        for p in &mut planned {
            p.duration = d;
        }
    }
    planned
}

/// Starts and heals the planned faults at their offsets from `started`. A fault that cannot
/// start is recorded (by the nemesis) and skipped; a heal that fails ends the run with that
/// error (the caller heals what stands). `eager` is true while a retry storm stands.
pub async fn drive(
    planned: Vec<Planned>,
    seed: u64,
    started: Instant,
    ctl: Arc<dyn Control>,
    rec: Arc<dyn Recorder>,
    nemesis: Arc<Mutex<Nemesis>>,
    eager: watch::Sender<bool>,
) -> anyhow::Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x006e_656d_6573_6973);
    // (time, heal before start at the same time, index)
    let mut events: Vec<(Duration, bool, usize)> = Vec::with_capacity(planned.len() * 2);
    for (i, p) in planned.iter().enumerate() {
        events.push((p.at, true, i));
        events.push((p.at + p.duration, false, i));
    }
    events.sort_by_key(|(t, is_start, i)| (*t, *is_start, *i));
    let mut ids: BTreeMap<usize, String> = BTreeMap::new();
    let mut storms = 0usize;
    for (t, is_start, i) in events {
        tokio::time::sleep_until((started + t).into()).await;
        let plan = &planned[i].plan;
        if is_start {
            let started = nemesis
                .lock()
                .await
                .start(ctl.as_ref(), rec.as_ref(), plan, &mut rng)
                .await;
            match started {
                Ok(id) => {
                    ids.insert(i, id);
                    if plan.eager_clients() {
                        storms += 1;
                        let _ = eager.send(true);
                    }
                }
                Err(e) => eprintln!("harness: {} not started: {e:#}", plan.kind()),
            }
        } else if let Some(id) = ids.remove(&i) {
            nemesis
                .lock()
                .await
                .heal(ctl.as_ref(), rec.as_ref(), &id)
                .await?;
            if plan.eager_clients() {
                storms = storms.saturating_sub(1);
                let _ = eager.send(storms > 0);
            }
        }
    }
    Ok(())
}
