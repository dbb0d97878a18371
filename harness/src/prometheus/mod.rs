//! A real Prometheus beside the cluster (`--prometheus auto|off|PATH`): it scrapes every role of
//! every node each second and evaluates the pipeline's alerting rules (`sut/prometheus/
//! alerts.yml`, built into the harness and copied into the run directory as `alerts.yml`) each
//! second, on 127.0.0.1 with its data under `<run>/prometheus/`. At the end of the run the
//! harness reads from its HTTP API every span an alert fired (from the raw `ALERTS` samples, at
//! Prometheus's own evaluation instants), every raw sample it scraped from the pipeline
//! (`prometheus/samples.jsonl`, which the checker evaluates the rules over to compare with
//! Prometheus) and the rules' health, takes a TSDB snapshot (`prometheus/snapshot/`, loadable with `prometheus --storage.tsdb.path=...`), stops
//! it and writes `prometheus/alerts.json` ([`formats::alerts::PrometheusRun`]). Without a binary
//! the run says so once and goes on: the checker evaluates the same rules over `metrics.csv`.
//!
//! Prometheus runs under `sh`, which holds a pipe from the harness and stops Prometheus when the
//! pipe closes: when the harness stops it, and also when the harness dies.

mod api;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use formats::alerts::{PrometheusRun, PROMETHEUS_RUN_VERSION};
use formats::files;
use formats::spec::PrometheusChoice;
use serde_json::json;
use tokio::process::{Child, ChildStdin, Command};

use crate::cluster::pipeline::ROLES;
use crate::cluster::Cluster;

/// The pipeline's alerting rules, as shipped in `sut/prometheus/alerts.yml`.
pub const RULES: &str = include_str!("../../../sut/prometheus/alerts.yml");
/// How often Prometheus scrapes each role (the same as `metrics.csv`).
pub const SCRAPE_INTERVAL: Duration = Duration::from_secs(1);
/// How often it evaluates the rules.
pub const EVALUATION_INTERVAL: Duration = Duration::from_secs(1);
/// A scrape slower than this fails (a paused role does not answer).
const SCRAPE_TIMEOUT: Duration = Duration::from_millis(800);
/// How long Prometheus gets to answer `/-/ready`.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Runs `$0 "$@"` and stops it (SIGTERM) once its stdin, a pipe from the harness, closes; exits
/// when it exits. fd 3 keeps the pipe for the watcher (an asynchronous list reads /dev/null).
const STOP_WITH_PIPE: &str = r#"exec 3<&0; "$0" "$@" </dev/null 3<&- & p=$!; (read -r _ <&3; kill -TERM "$p" 2>/dev/null) & wait "$p""#;
/// How long it gets to exit once asked to.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Writes the rules into the run directory (`alerts.yml`), for Prometheus and the checker.
pub fn write_rules(run_dir: &Path) -> anyhow::Result<PathBuf> {
    let path = run_dir.join(files::ALERT_RULES);
    std::fs::write(&path, RULES).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// The first executable file named `name` in a `PATH` directory.
fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

/// The binary `choice` asks for, or why there is none.
pub fn binary(choice: &PrometheusChoice) -> Result<PathBuf, String> {
    match choice {
        PrometheusChoice::Off => Err("--prometheus off".into()),
        PrometheusChoice::Auto => on_path("prometheus").ok_or_else(|| {
            "no `prometheus` on PATH (apt-get install prometheus, or --prometheus PATH)".into()
        }),
        PrometheusChoice::Binary(p) if p.is_file() => Ok(p.clone()),
        PrometheusChoice::Binary(p) => Err(format!("--prometheus {}: no such file", p.display())),
    }
}

/// Records that the run has no Prometheus, and why.
pub fn write_skipped(run_dir: &Path, why: &str) -> anyhow::Result<()> {
    write_run(run_dir, &PrometheusRun::skipped(why))
}

fn write_run(run_dir: &Path, run: &PrometheusRun) -> anyhow::Result<()> {
    let dir = run_dir.join(files::PROMETHEUS_DIR);
    std::fs::create_dir_all(&dir)?;
    let path = run_dir.join(files::PROMETHEUS_ALERTS);
    std::fs::write(&path, serde_json::to_vec_pretty(run)?)
        .with_context(|| format!("writing {}", path.display()))
}

/// The scrape config: one target per role per node, labelled `node`, `role` and
/// `instance="<node>/<role>"` (the labels the checker gives `metrics.csv`'s series). JSON is
/// YAML, so it is written as JSON.
pub fn config(cluster: &dyn Cluster, rules: &Path) -> anyhow::Result<serde_json::Value> {
    let mut targets = Vec::new();
    for node in cluster.nodes() {
        for role in ROLES {
            let url = cluster.url(&node, role)?;
            let addr = url
                .strip_prefix("http://")
                .with_context(|| format!("{url}: not an http:// address"))?
                .trim_end_matches('/');
            targets.push(json!({
                "targets": [addr],
                "labels": {"node": node, "role": role.as_str(), "instance": format!("{node}/{}", role.as_str())},
            }));
        }
    }
    let secs = |d: Duration| format!("{}ms", d.as_millis());
    Ok(json!({
        "global": {
            "scrape_interval": secs(SCRAPE_INTERVAL),
            "scrape_timeout": secs(SCRAPE_TIMEOUT),
            "evaluation_interval": secs(EVALUATION_INTERVAL),
        },
        "rule_files": [rules.display().to_string()],
        "scrape_configs": [{
            "job_name": checker::promql::store::JOB,
            "metrics_path": "/metrics",
            "static_configs": targets,
        }],
    }))
}

/// A running Prometheus.
pub struct Running {
    child: Child,
    stdin: Option<ChildStdin>,
    api: api::Api,
    run_dir: PathBuf,
    binary: String,
    started_unix_ms: i64,
}

fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Starts Prometheus for the run if `choice` allows and a binary is there; otherwise records
/// why not (`prometheus/alerts.json`) and returns `None`. `say` prints one line about it.
pub async fn start(
    choice: &PrometheusChoice,
    run_dir: &Path,
    rules: &Path,
    cluster: &dyn Cluster,
    say: &dyn Fn(&str),
) -> anyhow::Result<Option<Running>> {
    let bin = match binary(choice) {
        Ok(b) => b,
        Err(why) => {
            if *choice != PrometheusChoice::Off {
                say(&format!(
                    "prometheus skipped: {why}; alerts are evaluated from metrics.csv only"
                ));
            }
            write_skipped(run_dir, &why)?;
            return Ok(None);
        }
    };
    match launch(&bin, run_dir, rules, cluster).await {
        Ok(r) => {
            say(&format!("prometheus {} on {}", r.binary, r.api.base()));
            Ok(Some(r))
        }
        Err(e) => {
            let why = format!("{} did not start: {e:#}", bin.display());
            say(&format!("prometheus skipped: {why}"));
            write_skipped(run_dir, &why)?;
            Ok(None)
        }
    }
}

async fn launch(
    bin: &Path,
    run_dir: &Path,
    rules: &Path,
    cluster: &dyn Cluster,
) -> anyhow::Result<Running> {
    let dir = run_dir.join(files::PROMETHEUS_DIR);
    std::fs::create_dir_all(&dir)?;
    let config_path = dir.join("prometheus.yml");
    let rules = rules.canonicalize().context("the rules file")?;
    std::fs::write(
        &config_path,
        serde_json::to_vec_pretty(&config(cluster, &rules)?)?,
    )?;
    let version = std::process::Command::new(bin)
        .arg("--version")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .to_owned()
        })
        .unwrap_or_default();
    let port = crate::cluster::local::free_ports(1)?[0];
    let log = std::fs::File::create(dir.join("prometheus.log"))?;
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(STOP_WITH_PIPE)
        .arg(bin)
        .arg(format!("--config.file={}", config_path.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--web.enable-admin-api")
        .arg("--storage.tsdb.retention.time=1d")
        .stdin(Stdio::piped())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .context("starting sh for prometheus")?;
    let stdin = child.stdin.take();
    let api = api::Api::new(&format!("http://127.0.0.1:{port}"))?;
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if api.ready().await {
            break;
        }
        if let Some(status) = child.try_wait()? {
            anyhow::bail!(
                "it exited ({status}); see {}",
                dir.join("prometheus.log").display()
            );
        }
        if Instant::now() >= deadline {
            let _ = child.kill().await;
            anyhow::bail!("not ready within {READY_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(Running {
        child,
        stdin,
        api,
        run_dir: run_dir.to_owned(),
        binary: format!("{} ({})", bin.display(), version.trim()),
        started_unix_ms: unix_ms(),
    })
}

impl Running {
    /// Reads what fired, snapshots the TSDB, stops Prometheus and writes
    /// `prometheus/alerts.json`. Errors reading it are recorded in the file, not returned.
    pub async fn finish(mut self) -> anyhow::Result<PrometheusRun> {
        let ended = unix_ms();
        let mut errors = Vec::new();
        let step_ms = EVALUATION_INTERVAL.as_millis() as i64;
        let (alerts, mut phase) = match self.api.firing(self.started_unix_ms, ended, step_ms).await
        {
            Ok(a) => a,
            Err(e) => {
                errors.push(format!("reading ALERTS: {e:#}"));
                (Vec::new(), None)
            }
        };
        let samples = self.export_samples(ended, &mut errors).await;
        match self.api.rules_health(step_ms).await {
            Ok((failed, group_phase)) => {
                errors.extend(failed);
                // The raw ALERTS samples' phase is exact; the group's last evaluation is the
                // fallback when no alert was ever pending.
                phase = phase.or(group_phase);
            }
            Err(e) => errors.push(format!("reading the rules' health: {e:#}")),
        }
        let dir = self.run_dir.join(files::PROMETHEUS_DIR);
        let snapshot = match self.api.snapshot().await {
            Ok(name) => {
                let from = dir.join("data").join("snapshots").join(name);
                let to = dir.join("snapshot");
                std::fs::rename(&from, &to)
                    .map(|()| format!("{}/snapshot", files::PROMETHEUS_DIR))
                    .map_err(|e| errors.push(format!("moving the snapshot: {e}")))
                    .ok()
            }
            Err(e) => {
                errors.push(format!("taking a TSDB snapshot: {e:#}"));
                None
            }
        };
        self.stop().await;
        if snapshot.is_some() {
            // The snapshot holds every scraped series; the live data folder is not needed.
            let _ = std::fs::remove_dir_all(dir.join("data"));
        }
        let run = PrometheusRun {
            version: PROMETHEUS_RUN_VERSION,
            ran: true,
            skipped: None,
            binary: Some(self.binary.clone()),
            scrape_interval_ms: SCRAPE_INTERVAL.as_millis() as u64,
            evaluation_interval_ms: EVALUATION_INTERVAL.as_millis() as u64,
            scrape_timeout_ms: SCRAPE_TIMEOUT.as_millis() as u64,
            started_unix_ms: Some(self.started_unix_ms),
            ended_unix_ms: Some(ended),
            alerts,
            snapshot,
            errors,
            evaluation_phase_ms: phase,
            samples,
        };
        write_run(&self.run_dir, &run)?;
        Ok(run)
    }

    /// Writes every raw sample of the pipeline's targets to `prometheus/samples.jsonl`; returns
    /// its path relative to the run directory, or records why it could not.
    async fn export_samples(&self, ended: i64, errors: &mut Vec<String>) -> Option<String> {
        let selector = format!("{{job=\"{}\"}}", checker::promql::store::JOB);
        let series = match self.api.raw(&selector, self.started_unix_ms, ended).await {
            Ok(s) => s,
            Err(e) => {
                errors.push(format!("reading the samples: {e:#}"));
                return None;
            }
        };
        let mut text = Vec::new();
        for s in &series {
            if let Err(e) = serde_json::to_writer(&mut text, s) {
                errors.push(format!("encoding the samples: {e}"));
                return None;
            }
            text.push(b'\n');
        }
        let path = self.run_dir.join(files::PROMETHEUS_SAMPLES);
        match std::fs::write(&path, text) {
            Ok(()) => Some(files::PROMETHEUS_SAMPLES.to_owned()),
            Err(e) => {
                errors.push(format!("writing {}: {e}", path.display()));
                None
            }
        }
    }

    /// Closes the pipe (the wrapper then stops Prometheus) and waits; kills the group after
    /// [`STOP_GRACE`].
    async fn stop(&mut self) {
        drop(self.stdin.take());
        if tokio::time::timeout(STOP_GRACE, self.child.wait())
            .await
            .is_err()
        {
            if let Some(pid) = self.child.id() {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            let _ = self.child.wait().await;
        }
    }
}
