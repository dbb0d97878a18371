//! The run lifecycle: cluster up, workload and nemesis, heal, quiesce, final state, stop, check.

mod setup;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use formats::files;
use nemesis::ledger::HealLedger;
use nemesis::{Control, Nemesis};
use tokio::sync::{watch, Mutex};

use crate::cluster::{open, Cluster};
use crate::history::HistoryWriter;
use crate::progress::{Counts, Progress};
use crate::workload::stock::{self, StockOptions, StockTally};
use crate::workload::{self, Tally, WorkloadOptions};
use formats::spec::RunConfig;
use setup::{deploy, open_run_dir, stop_all, Deployed};

/// Exit code when the run was interrupted by Ctrl-C (after healing and stopping everything).
pub const EXIT_INTERRUPTED: i32 = 130;
/// Longest time clients keep polling acknowledged orders after the time limit.
const READ_DRAIN: Duration = Duration::from_secs(10);

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The `pipeline` binary: the flag, or the file next to this executable.
pub fn pipeline_bin(args: &RunConfig) -> anyhow::Result<std::path::PathBuf> {
    if let Some(p) = &args.pipeline_bin {
        return Ok(p.clone());
    }
    let exe = std::env::current_exe().context("locating the harness binary")?;
    Ok(exe.with_file_name("pipeline"))
}

/// Runs one test end to end and returns the process exit code (0 valid, 1 invalid, 2 unknown,
/// 130 interrupted). Errors are crashes (exit 255) after best-effort cleanup.
pub async fn run(config: RunConfig) -> anyhow::Result<i32> {
    Ok(execute(config).await?.code)
}

/// What one run left: its exit code, its directory and (when it was checked) its results.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// 0 valid, 1 invalid, 2 unknown, 130 interrupted.
    pub code: i32,
    /// The run directory.
    pub dir: std::path::PathBuf,
    /// The seed it ran with.
    pub seed: u64,
    /// The checks' results; `None` when the run was interrupted before the check.
    pub results: Option<checker::Results>,
}

/// As [`run`], returning the run directory and results too (`harness scenario`, `nightly`).
pub async fn execute(config: RunConfig) -> anyhow::Result<RunOutcome> {
    crate::config::validate(&config).map_err(crate::BadInput)?;
    let seed = config.seed.unwrap_or_else(rand::random);
    let bin = pipeline_bin(&config)?;
    let interrupt = Interrupt::listen();
    let mut prepared = open::prepare(&config).await?;
    let args = crate::spec::resolved(&config, seed, &prepared);
    if let Err(msg) = formats::fault::check_nodes(&args.faults, &prepared.node_names) {
        open::finish(&mut prepared)
            .await
            .context("taking down the netns cluster")?;
        return Err(anyhow::Error::new(crate::BadInput(msg)));
    }
    let result = if interrupt.is_set() {
        eprintln!("harness: interrupted while preparing the cluster");
        Ok(RunOutcome {
            code: EXIT_INTERRUPTED,
            dir: args.out.clone(),
            seed,
            results: None,
        })
    } else {
        run_prepared(&args, seed, bin, &prepared, interrupt).await
    };
    let finished = open::finish(&mut prepared).await;
    let outcome = result?;
    finished.context("taking down the netns cluster")?;
    Ok(outcome)
}

/// Ctrl-C, listened for from the very start of a run so that no phase (preparing a netns
/// cluster, deploying, quiescing) is cut half-way by the default handler: each phase ends or
/// stops at a safe point, then every fault is healed and every process stopped.
#[derive(Clone)]
struct Interrupt(watch::Receiver<bool>);

impl Interrupt {
    fn listen() -> Interrupt {
        let (tx, rx) = watch::channel(false);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                let _ = tx.send(true);
            }
            // Keep the sender alive so receivers wait rather than see a closed channel.
            std::future::pending::<()>().await;
        });
        Interrupt(rx)
    }

    fn is_set(&self) -> bool {
        *self.0.borrow()
    }

    async fn wait(&mut self) {
        while !*self.0.borrow_and_update() {
            if self.0.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

async fn run_prepared(
    args: &RunConfig,
    seed: u64,
    bin: std::path::PathBuf,
    prepared: &open::Prepared,
    mut interrupt: Interrupt,
) -> anyhow::Result<RunOutcome> {
    let progress = Arc::new(Progress::new());
    let run = open_run_dir(args, prepared, &bin, &progress)?;
    let (dir, history) = (run.dir.clone(), run.history.clone());
    let Deployed {
        cluster,
        ctl,
        observers,
        mut layer,
    } = deploy(args, seed, prepared, bin, &run, &progress).await?;
    if interrupt.is_set() {
        progress.line("interrupted while deploying; stopping the cluster");
        stop_all(observers, cluster.as_ref(), &mut layer).await?;
        history.flush()?;
        progress.finish();
        return Ok(RunOutcome {
            code: EXIT_INTERRUPTED,
            dir,
            seed,
            results: None,
        });
    }
    let ledger = HealLedger::in_run_dir(&dir);
    let nemesis = Arc::new(Mutex::new(Nemesis::new(ledger)));

    let outcome = tokio::select! {
        r = drive(args, seed, cluster.clone(), ctl.clone(), history.clone(), nemesis.clone(), progress.clone()) => Some(r),
        _ = interrupt.wait() => None,
    };
    // Whatever happened, heal and stop before anything else.
    let healed = nemesis
        .lock()
        .await
        .heal_all(ctl.as_ref(), history.as_ref())
        .await;
    let code = match (outcome, healed) {
        (None, healed) => {
            progress.line("interrupted; healed faults and stopping the cluster");
            stop_all(observers, cluster.as_ref(), &mut layer).await?;
            history.flush()?;
            progress.finish();
            healed.context("healing faults")?;
            return Ok(RunOutcome {
                code: EXIT_INTERRUPTED,
                dir,
                seed,
                results: None,
            });
        }
        (Some(Err(e)), _) => {
            stop_all(observers, cluster.as_ref(), &mut layer).await?;
            let _ = history.flush();
            progress.finish();
            return Err(e);
        }
        (Some(Ok(())), Err(e)) => {
            stop_all(observers, cluster.as_ref(), &mut layer).await?;
            let _ = history.flush();
            progress.finish();
            return Err(e.context("healing faults"));
        }
        (Some(Ok(())), Ok(_)) => {
            progress.phase(
                "quiesce",
                &format!("quiescing (up to {:?})", args.quiesce_timeout),
            );
            let collected = tokio::select! {
                c = quiesce_and_collect(args, cluster.as_ref(), &dir, &progress) => Some(c),
                _ = interrupt.wait() => None,
            };
            progress.phase("stop", "stopping the cluster");
            stop_all(observers, cluster.as_ref(), &mut layer).await?;
            let Some(collected) = collected else {
                progress.line("interrupted while quiescing; the run was not checked");
                history.flush()?;
                progress.finish();
                return Ok(RunOutcome {
                    code: EXIT_INTERRUPTED,
                    dir,
                    seed,
                    results: None,
                });
            };
            collected?;
            history.flush()?;
            progress.finish();
            let results = check_results(&dir, None)?;
            write_runs_index(&args.out);
            RunOutcome {
                code: results.validity.exit_code(),
                dir,
                seed,
                results: Some(results),
            }
        }
    };
    Ok(code)
}

/// Rewrites the runs index under `out`. It is a convenience: failing to rewrite it does not
/// change any verdict.
pub fn write_runs_index(out: &std::path::Path) {
    match checker::report::write_runs_index(out) {
        Ok(n) => eprintln!(
            "harness: runs index {} ({n} runs)",
            out.join(files::INDEX).display()
        ),
        Err(e) => eprintln!("harness: runs index not rewritten: {e}"),
    }
}

/// Process numbers of the stock clients in a mixed run start here, apart from the order
/// clients' (which grow by `--concurrency` per retirement).
pub const MIXED_STOCK_PROCESS_BASE: u64 = 1_000_000;

/// What the clients of every workload have seen so far.
#[derive(Clone, Default)]
struct Tallies {
    orders: Arc<std::sync::Mutex<Tally>>,
    stock: Arc<std::sync::Mutex<StockTally>>,
}

impl Tallies {
    /// Completed operations and errors so far, of every workload.
    fn counts(&self) -> Counts {
        let t = self.orders.lock().map(|t| *t).unwrap_or_default();
        let s = self.stock.lock().map(|t| *t).unwrap_or_default();
        Counts {
            ops: t.ops() + s.ops(),
            errors: t.errors() + s.errors(),
        }
    }

    /// The one-line summary of what the clients saw.
    fn summary(&self, args: &RunConfig) -> String {
        let mut parts = Vec::new();
        if args.workload.orders() {
            let t = self.orders.lock().map(|t| *t).unwrap_or_default();
            parts.push(format!(
                "orders {} ok, {} fail, {} info; reads {} ok, {} fail; {} orders not seen terminal",
                t.ok, t.fail, t.info, t.reads_ok, t.reads_fail, t.reads_abandoned,
            ));
        }
        if args.workload.stock() {
            let s = self.stock.lock().map(|t| *t).unwrap_or_default();
            parts.push(format!(
                "stock: reserves {} ok, {} short; releases {} ok, {} fail; {} info; reads {} ok, {} fail",
                s.reserve_ok, s.reserve_fail, s.release_ok, s.release_fail, s.info, s.reads_ok, s.reads_fail,
            ));
        }
        parts.join("; ")
    }
}

/// The run's workloads, each a task, with their tallies.
struct Workloads {
    orders: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    stock: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    tallies: Tallies,
}

impl Workloads {
    /// Starts the workloads `args.workload` names.
    fn start(
        args: &RunConfig,
        seed: u64,
        cluster: &Arc<dyn Cluster>,
        history: &Arc<HistoryWriter>,
        stop: &watch::Receiver<bool>,
        eager: watch::Receiver<bool>,
    ) -> Workloads {
        let tallies = Tallies::default();
        let orders = args.workload.orders().then(|| {
            let opts = WorkloadOptions {
                concurrency: usize::from(args.concurrency),
                rate: args.rate,
                time_limit: args.time_limit,
                seed,
                client_timeout: args.client_timeout,
                skus: crate::cluster::pipeline::ORDER_SKUS,
                read_drain: READ_DRAIN.min(args.quiesce_timeout),
                eager: Some(eager),
            };
            let (c, h, s) = (cluster.clone(), history.clone(), stop.clone());
            tokio::spawn(workload::run(c, h, opts, s, tallies.orders.clone()))
        });
        let stock = args.stock_sku_names().map(|skus| {
            let opts = StockOptions {
                concurrency: usize::from(args.concurrency),
                rate: args.rate,
                time_limit: args.time_limit,
                seed,
                client_timeout: args.client_timeout,
                skus,
                process_base: if args.workload.orders() {
                    MIXED_STOCK_PROCESS_BASE
                } else {
                    0
                },
            };
            let (c, h, s) = (cluster.clone(), history.clone(), stop.clone());
            tokio::spawn(stock::run(c, h, opts, s, tallies.stock.clone()))
        });
        Workloads {
            orders,
            stock,
            tallies,
        }
    }

    /// Waits for every workload; the first error wins.
    async fn join(&mut self) -> anyhow::Result<()> {
        let mut result = Ok(());
        for task in [self.orders.take(), self.stock.take()]
            .into_iter()
            .flatten()
        {
            let r = task.await.context("workload task").and_then(|r| r);
            if result.is_ok() {
                result = r;
            }
        }
        result
    }
}

/// Workload and nemesis, concurrently, until the time limit.
async fn drive(
    args: &RunConfig,
    seed: u64,
    cluster: Arc<dyn Cluster>,
    ctl: Arc<dyn Control>,
    history: Arc<HistoryWriter>,
    nemesis: Arc<Mutex<Nemesis>>,
    progress: Arc<Progress>,
) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let (eager_tx, eager_rx) = watch::channel(false);
    progress.phase(
        "workload",
        &format!(
            "{} workload for {:?} at {} ops/s",
            args.workload, args.time_limit, args.rate
        ),
    );
    if args.workload.stock() {
        stock::wait_until_ready(cluster.as_ref(), stock::LEADER_WAIT).await?;
    }
    let started = Instant::now();
    let mut load = Workloads::start(args, seed, &cluster, &history, &stop_rx, eager_rx);
    let planned = crate::faults::plan(args, seed, cluster.nodes().len());
    let nem = tokio::spawn(crate::faults::drive(
        planned,
        seed,
        started,
        ctl,
        history.clone(),
        nemesis,
        eager_tx,
    ));
    let ticker = {
        let (history, progress) = (history.clone(), progress.clone());
        let tallies = load.tallies.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                if let Err(e) = history.flush() {
                    tracing::error!(error = format!("{e:#}"), "history flush failed");
                }
                progress.update(tallies.counts());
            }
        })
    };
    let load_result = load.join().await;
    let _ = stop_tx.send(true);
    let nem_result = nem.await.context("nemesis task")?;
    ticker.abort();
    load_result?;
    nem_result?;
    progress.line(&format!(
        "workload done in {:.1}s: {}",
        started.elapsed().as_secs_f64(),
        load.tallies.summary(args),
    ));
    Ok(())
}

async fn quiesce_and_collect(
    args: &RunConfig,
    cluster: &dyn Cluster,
    dir: &std::path::Path,
    progress: &Progress,
) -> anyhow::Result<()> {
    let open = crate::collect::quiesce(cluster, args.quiesce_timeout).await;
    if open > 0 {
        progress.line(&format!("{open} orders or reads still open after quiesce"));
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
    Ok(check_results(dir, other)?.validity.exit_code())
}

/// Checks the run directory (drawing `other` on the retry-load graph), prints every check, the
/// scenario expectation if the spec names one, and the verdict; returns the results.
pub fn check_results(
    dir: &std::path::Path,
    other: Option<&std::path::Path>,
) -> anyhow::Result<checker::Results> {
    let results = checker::analyze_compared(dir, other, &checker::Params::default())?;
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
    if let Some(e) = &results.expectation {
        eprintln!("harness: expectation {}", e.line());
    }
    println!("{}", results.validity);
    Ok(results)
}
