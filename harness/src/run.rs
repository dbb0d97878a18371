//! The run lifecycle: cluster up, workload and nemesis, heal, quiesce, final state, stop, check.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use checker::rundir::files;
use nemesis::ledger::HealLedger;
use nemesis::{Control, Nemesis};
use serde_json::json;
use tokio::sync::{watch, Mutex};

use crate::cli::RunArgs;
use crate::cluster::local::{self, LocalCluster, LocalOptions};
use crate::cluster::proxied::{self, ProxyLayer, WithProxy};
use crate::cluster::Cluster;
use crate::history::HistoryWriter;
use crate::workload::{self, Tally, WorkloadOptions};

/// Exit code when the run was interrupted by Ctrl-C (after healing and stopping everything).
pub const EXIT_INTERRUPTED: i32 = 130;

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The `pipeline` binary: the flag, or the file next to this executable.
fn pipeline_bin(args: &RunArgs) -> anyhow::Result<std::path::PathBuf> {
    if let Some(p) = &args.pipeline_bin {
        return Ok(p.clone());
    }
    let exe = std::env::current_exe().context("locating the harness binary")?;
    Ok(exe.with_file_name("pipeline"))
}

fn rerun_command(args: &RunArgs, seed: u64) -> String {
    let mut cmd = format!(
        "harness run --cluster local --nodes {} --time-limit {}s --rate {} --concurrency {} --seed {seed} --scenario {} --nemesis {} --pause-role {}",
        args.nodes,
        args.time_limit.as_secs_f64(),
        args.rate,
        args.concurrency,
        args.scenario,
        args.nemesis.spelling(),
        args.pause_role,
    );
    if let Some(d) = args.nemesis_interval {
        cmd.push_str(&format!(" --nemesis-interval {}s", d.as_secs_f64()));
    }
    if args.nemesis_pairs {
        cmd.push_str(" --nemesis-pairs");
    }
    if let Some(d) = args.fault_at {
        cmd.push_str(&format!(" --fault-at {}s", d.as_secs_f64()));
    }
    if let Some(d) = args.fault_for {
        cmd.push_str(&format!(" --fault-for {}s", d.as_secs_f64()));
    }
    if args.no_idempotency {
        cmd.push_str(" --no-idempotency");
    }
    cmd
}

/// Runs one test end to end and returns the process exit code (0 valid, 1 invalid, 2 unknown,
/// 130 interrupted). Errors are crashes (exit 255) after best-effort cleanup.
pub async fn run(args: RunArgs) -> anyhow::Result<i32> {
    let seed = args.seed.unwrap_or_else(rand::random);
    let bin = pipeline_bin(&args)?;
    let dir = crate::rundir::create(&args.out, &args.scenario)?;
    let run_id = format!(
        "{}/{}",
        args.scenario,
        dir.file_name().and_then(|n| n.to_str()).unwrap_or("run")
    );
    eprintln!("harness: run {run_id} seed {seed}");
    eprintln!("harness: writing {}", dir.display());
    let spec = json!({
        "scenario": args.scenario,
        "seed": seed,
        "cluster": args.cluster,
        "nodes": args.nodes,
        "time_limit_s": args.time_limit.as_secs_f64(),
        "rate": args.rate,
        "concurrency": args.concurrency,
        "nemesis": args.nemesis.spelling(),
        "nemesis_interval_s": args.nemesis_interval.map(|d| d.as_secs_f64()),
        "nemesis_pairs": args.nemesis_pairs,
        "toxiproxy": args.toxiproxy,
        "pause_role": args.pause_role,
        "client_timeout_s": args.client_timeout.as_secs_f64(),
        "no_idempotency": args.no_idempotency,
        "rerun": rerun_command(&args, seed),
    });
    std::fs::write(dir.join(files::SPEC), serde_json::to_vec_pretty(&spec)?)?;
    let history = Arc::new(HistoryWriter::create(
        &dir.join(files::HISTORY),
        &run_id,
        unix_ms(),
    )?);

    let mut role_flags = std::collections::BTreeMap::new();
    if args.no_idempotency {
        role_flags.insert("payment".to_owned(), vec!["--no-idempotency".to_owned()]);
    }
    let mut opts = LocalOptions {
        nodes: usize::from(args.nodes),
        pipeline_bin: bin,
        run_dir: dir.clone(),
        role_flags,
        ports: None,
        peers: None,
    };
    let mut layer = if crate::faults::needs_proxies(&args) {
        Some(start_proxies(&args, seed, &dir, &mut opts).await?)
    } else {
        None
    };
    let api = layer.as_ref().map(|l| l.api().to_owned());
    write_cluster_json(&dir, usize::from(args.nodes), api.as_deref())?;
    eprintln!("harness: starting a local cluster of {} nodes", args.nodes);
    let cluster: Arc<dyn Cluster> = match LocalCluster::start(&opts).await {
        Ok(c) => Arc::new(c),
        Err(e) => {
            if let Some(l) = layer.as_mut() {
                let _ = l.stop().await;
            }
            return Err(e);
        }
    };
    let ctl: Arc<dyn Control> = Arc::new(WithProxy::new(cluster.clone(), api));
    let ledger = HealLedger::in_run_dir(&dir);
    let nemesis = Arc::new(Mutex::new(Nemesis::new(ledger)));

    let outcome = tokio::select! {
        r = drive(&args, seed, cluster.clone(), ctl.clone(), history.clone(), nemesis.clone()) => Some(r),
        _ = tokio::signal::ctrl_c() => None,
    };
    // Whatever happened, heal and stop before anything else.
    let healed = nemesis
        .lock()
        .await
        .heal_all(ctl.as_ref(), history.as_ref())
        .await;
    let code = match outcome {
        None => {
            eprintln!("harness: interrupted; healed faults and stopping the cluster");
            stop_all(cluster.as_ref(), &mut layer).await?;
            history.flush()?;
            return Ok(EXIT_INTERRUPTED);
        }
        Some(Err(e)) => {
            stop_all(cluster.as_ref(), &mut layer).await?;
            let _ = history.flush();
            return Err(e);
        }
        Some(Ok(())) => {
            healed.context("healing faults")?;
            quiesce_and_collect(&args, cluster.as_ref(), &dir).await?;
            stop_all(cluster.as_ref(), &mut layer).await?;
            history.flush()?;
            check(&dir)?
        }
    };
    Ok(code)
}

/// Stops the cluster, then the link proxies.
async fn stop_all(cluster: &dyn Cluster, layer: &mut Option<ProxyLayer>) -> anyhow::Result<()> {
    let stopped = cluster.stop().await;
    if let Some(l) = layer.as_mut() {
        l.stop().await?;
    }
    stopped
}

/// Starts the link proxies (faultproxy, or the `--toxiproxy` server) in front of ports chosen
/// now, and points each node's peers at them.
async fn start_proxies(
    args: &RunArgs,
    seed: u64,
    dir: &std::path::Path,
    opts: &mut LocalOptions,
) -> anyhow::Result<ProxyLayer> {
    let mut layer = match &args.toxiproxy {
        Some(url) => ProxyLayer::external(url).await?,
        None => {
            let bin = proxied::faultproxy_bin(args.faultproxy_bin.as_ref())?;
            ProxyLayer::start(&bin, &dir.join("nodes").join("faultproxy.log"), seed).await?
        }
    };
    let ports = local::choose_ports(opts.nodes)?;
    let addrs = ports
        .iter()
        .map(|(k, p)| (k.clone(), format!("127.0.0.1:{p}")))
        .collect();
    match layer.link(&addrs).await {
        Ok(peers) => {
            opts.ports = Some(ports);
            opts.peers = Some(peers);
            Ok(layer)
        }
        Err(e) => {
            let _ = layer.stop().await;
            Err(e)
        }
    }
}

/// `cluster.json`: what `harness heal` needs to reach the cluster without this process
/// (docs/contracts.md §7).
fn write_cluster_json(
    dir: &std::path::Path,
    nodes: usize,
    proxy_api: Option<&str>,
) -> anyhow::Result<()> {
    let nodes: Vec<_> = (1..=nodes)
        .map(|i| json!({"name": format!("n{i}"), "ip": null, "netns": null}))
        .collect();
    let doc = json!({"kind": "local", "proxy_api": proxy_api, "nodes": nodes});
    std::fs::write(
        dir.join(crate::heal::CLUSTER_FILE),
        serde_json::to_vec_pretty(&doc)?,
    )?;
    Ok(())
}

/// Workload and nemesis, concurrently, until the time limit.
async fn drive(
    args: &RunArgs,
    seed: u64,
    cluster: Arc<dyn Cluster>,
    ctl: Arc<dyn Control>,
    history: Arc<HistoryWriter>,
    nemesis: Arc<Mutex<Nemesis>>,
) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let (eager_tx, eager_rx) = watch::channel(false);
    let tally = Arc::new(std::sync::Mutex::new(Tally::default()));
    let opts = WorkloadOptions {
        concurrency: usize::from(args.concurrency),
        rate: args.rate,
        time_limit: args.time_limit,
        seed,
        client_timeout: args.client_timeout,
        skus: 10,
        eager: Some(eager_rx),
    };
    let started = Instant::now();
    let load = tokio::spawn(workload::run(
        cluster.clone(),
        history.clone(),
        opts,
        stop_rx,
        tally.clone(),
    ));
    let planned = crate::faults::plan(args, seed);
    let nem = tokio::spawn(crate::faults::drive(
        planned,
        seed,
        started,
        ctl,
        history.clone(),
        nemesis,
        eager_tx,
    ));
    let progress = {
        let (history, tally) = (history.clone(), tally.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                if let Err(e) = history.flush() {
                    tracing::error!(error = format!("{e:#}"), "history flush failed");
                }
                let t = tally.lock().map(|t| *t).unwrap_or_default();
                tracing::debug!(ok = t.ok, fail = t.fail, info = t.info, "progress");
            }
        })
    };
    let load_result = load.await.context("workload task")?;
    let _ = stop_tx.send(true);
    let nem_result = nem.await.context("nemesis task")?;
    progress.abort();
    load_result?;
    nem_result?;
    let t = tally.lock().map(|t| *t).unwrap_or_default();
    eprintln!(
        "harness: workload done in {:.1}s: {} ok, {} fail, {} info",
        started.elapsed().as_secs_f64(),
        t.ok,
        t.fail,
        t.info
    );
    Ok(())
}

async fn quiesce_and_collect(
    args: &RunArgs,
    cluster: &dyn Cluster,
    dir: &std::path::Path,
) -> anyhow::Result<()> {
    eprintln!("harness: quiescing (up to {:?})", args.quiesce_timeout);
    let open = crate::collect::quiesce(cluster, args.quiesce_timeout).await;
    if open > 0 {
        eprintln!("harness: {open} orders or reads still open after quiesce");
    }
    let state = crate::collect::final_state(cluster).await;
    std::fs::write(
        dir.join(files::FINAL_STATE),
        serde_json::to_vec_pretty(&state)?,
    )?;
    Ok(())
}

/// Checks the run directory, prints the verdict, returns the exit code.
pub fn check(dir: &std::path::Path) -> anyhow::Result<i32> {
    let results = checker::analyze(dir)?;
    for c in &results.checks {
        eprintln!(
            "harness: check {:<10} {:<8} {}",
            c.name,
            c.validity.as_str(),
            c.summary
        );
    }
    eprintln!(
        "harness: verdict {} — report {}",
        results.validity,
        dir.join(files::INDEX).display()
    );
    println!("{}", results.validity);
    Ok(results.validity.exit_code())
}
