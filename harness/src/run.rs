//! The run lifecycle: cluster up, workload and nemesis, heal, quiesce, final state, stop, check.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use checker::rundir::files;
use nemesis::ledger::HealLedger;
use nemesis::schedule::{self, Planned};
use nemesis::Nemesis;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::json;
use tokio::sync::{watch, Mutex};

use crate::cli::{NemesisKind, RunArgs};
use crate::cluster::local::{LocalCluster, LocalOptions};
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
        match args.nemesis {
            NemesisKind::None => "none",
            NemesisKind::Pause => "pause",
        },
        args.pause_role,
    );
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
        "nemesis": args.nemesis,
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
    eprintln!("harness: starting a local cluster of {} nodes", args.nodes);
    let cluster: Arc<dyn Cluster> = Arc::new(
        LocalCluster::start(&LocalOptions {
            nodes: usize::from(args.nodes),
            pipeline_bin: bin,
            run_dir: dir.clone(),
            role_flags,
        })
        .await?,
    );
    let ledger = HealLedger::in_run_dir(&dir);
    let nemesis = Arc::new(Mutex::new(Nemesis::new(ledger)));

    let outcome = tokio::select! {
        r = drive(&args, seed, cluster.clone(), history.clone(), nemesis.clone()) => Some(r),
        _ = tokio::signal::ctrl_c() => None,
    };
    // Whatever happened, heal and stop before anything else.
    let healed = nemesis
        .lock()
        .await
        .heal_all(cluster.as_ref(), history.as_ref())
        .await;
    let code = match outcome {
        None => {
            eprintln!("harness: interrupted; healed faults and stopping the cluster");
            cluster.stop().await?;
            history.flush()?;
            return Ok(EXIT_INTERRUPTED);
        }
        Some(Err(e)) => {
            cluster.stop().await?;
            let _ = history.flush();
            return Err(e);
        }
        Some(Ok(())) => {
            healed.context("healing faults")?;
            quiesce_and_collect(&args, cluster.as_ref(), &dir).await?;
            cluster.stop().await?;
            history.flush()?;
            let code = check(&dir)?;
            // The runs index is a convenience: failing to rewrite it does not change the verdict.
            match checker::report::write_runs_index(&args.out) {
                Ok(n) => eprintln!(
                    "harness: runs index {} ({n} runs)",
                    args.out.join(files::INDEX).display()
                ),
                Err(e) => eprintln!("harness: runs index not rewritten: {e}"),
            }
            code
        }
    };
    Ok(code)
}

/// Workload and nemesis, concurrently, until the time limit.
async fn drive(
    args: &RunArgs,
    seed: u64,
    cluster: Arc<dyn Cluster>,
    history: Arc<HistoryWriter>,
    nemesis: Arc<Mutex<Nemesis>>,
) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let tally = Arc::new(std::sync::Mutex::new(Tally::default()));
    let opts = WorkloadOptions {
        concurrency: usize::from(args.concurrency),
        rate: args.rate,
        time_limit: args.time_limit,
        seed,
        client_timeout: args.client_timeout,
        skus: 10,
    };
    let started = Instant::now();
    let load = tokio::spawn(workload::run(
        cluster.clone(),
        history.clone(),
        opts,
        stop_rx,
        tally.clone(),
    ));
    let plan: Vec<Planned> = match args.nemesis {
        NemesisKind::None => Vec::new(),
        NemesisKind::Pause => schedule::single_pause(seed, args.time_limit, &args.pause_role),
    };
    let plan: Vec<Planned> = plan
        .into_iter()
        .map(|mut p| {
            p.at = args.fault_at.unwrap_or(p.at);
            p.duration = args.fault_for.unwrap_or(p.duration);
            p
        })
        .collect();
    let nem = {
        let (cluster, history) = (cluster.clone(), history.clone());
        tokio::spawn(async move {
            let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x006e_656d_6573_6973);
            for p in plan {
                tokio::time::sleep_until((started + p.at).into()).await;
                let id = nemesis
                    .lock()
                    .await
                    .start(cluster.as_ref(), history.as_ref(), &p.plan, &mut rng)
                    .await?;
                tokio::time::sleep(p.duration).await;
                nemesis
                    .lock()
                    .await
                    .heal(cluster.as_ref(), history.as_ref(), &id)
                    .await?;
            }
            anyhow::Ok(())
        })
    };
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
    check_compared(dir, None)
}

/// As [`check`]; `other` is a second run drawn on the same retry-load graph.
pub fn check_compared(
    dir: &std::path::Path,
    other: Option<&std::path::Path>,
) -> anyhow::Result<i32> {
    let results = checker::analyze_compared(dir, other)?;
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
