//! The local cluster: each node's roles as child processes on 127.0.0.1, no root needed.
//!
//! Children get their own process group (a Ctrl-C in the terminal reaches only the harness,
//! which then heals and stops them in order), are killed when their handle is dropped, and watch
//! the harness's pid so that even a SIGKILLed harness leaves no pipeline running.
//!
//! Node configs live in the run directory (`nodes/<node>/config.json`); the cluster secret does
//! not: it is in a [`SecretFile`] below the system's temporary directory, removed by `stop`.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use async_trait::async_trait;
use formats::spec::ClusterKind;
use formats::Role;
use nemesis::Signal;
use nix::sys::signal::{kill, Signal as NixSignal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tokio::sync::Mutex;

use super::pipeline::{self, RoleKey, ROLES};
use super::secret::{ClusterSecret, SecretFile};
use super::Cluster;

/// How long roles get to answer `/health` after start.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a role gets to exit after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(3);

struct RoleProcess {
    port: u16,
    child: Mutex<Option<Child>>,
    // What `restart` (the heal of a kill) needs to start it again.
    args: Vec<String>,
    log: PathBuf,
}

/// Options for starting a local cluster.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// Number of nodes, `n1`..`nN`.
    pub nodes: usize,
    /// The `pipeline` binary.
    pub pipeline_bin: PathBuf,
    /// Run directory: logs go to `nodes/<node>/<role>.log`, state to `nodes/<node>/data/`.
    pub run_dir: PathBuf,
    /// Extra flags per role (e.g. `payment` => `--no-idempotency`).
    pub role_flags: BTreeMap<Role, Vec<String>>,
    /// The `settings` of every node's config (contract §1).
    pub settings: serde_json::Value,
    /// Ports per (node, role) chosen beforehand ([`choose_ports`]); free ones if `None`.
    pub ports: Option<BTreeMap<RoleKey, u16>>,
    /// Each node's peers when links go through the proxy layer (`cluster::proxied`).
    pub peers: Option<super::proxied::PeersByNode>,
    /// The cluster secret.
    pub secret: ClusterSecret,
}

/// Free loopback ports for every role of `nodes` nodes, keyed (node, role).
pub fn choose_ports(nodes: usize) -> anyhow::Result<BTreeMap<RoleKey, u16>> {
    let keys: Vec<RoleKey> = (1..=nodes)
        .flat_map(|i| ROLES.iter().map(move |r| (format!("n{i}"), *r)))
        .collect();
    Ok(keys.iter().cloned().zip(free_ports(keys.len())?).collect())
}

/// Processes on loopback.
pub struct LocalCluster {
    nodes: Vec<String>,
    bin: PathBuf,
    roles: BTreeMap<RoleKey, RoleProcess>,
    secret: ClusterSecret,
    /// The roles' secret file, until `stop` removes it (restarts read it too).
    secret_file: std::sync::Mutex<Option<SecretFile>>,
}

/// How many ports below the kernel's ephemeral range role ports are drawn from.
const ROLE_PORT_SPAN: u16 = 12_000;
/// Candidates tried per port before giving up.
const ROLE_PORT_TRIES: usize = 200;

/// The first port of the kernel's ephemeral range (what binding port 0 hands out).
fn ephemeral_low() -> Option<u16> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// `n` free loopback ports for roles, drawn from just below the ephemeral range: anything that
/// binds port 0 later (the link proxies, clients, other tests) never takes one of them while
/// the roles are starting. Falls back to port 0 where the range is unknown or too low.
pub(crate) fn free_ports(n: usize) -> anyhow::Result<Vec<u16>> {
    // Hold all listeners until every port is chosen so none repeats.
    let mut listeners: Vec<TcpListener> = Vec::with_capacity(n);
    let low = ephemeral_low().filter(|l| *l > 1024 + ROLE_PORT_SPAN);
    // Where to start looking: varies per process so concurrent runs rarely probe the same ports.
    let mut x = u64::from(std::process::id()).wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
    for _ in 0..n {
        let mut bound = None;
        if let Some(low) = low {
            for _ in 0..ROLE_PORT_TRIES {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let port = low - 1 - (x % u64::from(ROLE_PORT_SPAN)) as u16;
                if let Ok(l) = TcpListener::bind(("127.0.0.1", port)) {
                    bound = Some(l);
                    break;
                }
            }
        }
        let l = match bound {
            Some(l) => l,
            None => TcpListener::bind("127.0.0.1:0").context("finding free loopback ports")?,
        };
        listeners.push(l);
    }
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}

fn config_path(opts: &LocalOptions, node: &str) -> PathBuf {
    opts.run_dir.join("nodes").join(node).join("config.json")
}

/// Writes every node's config file (contract §1). Each node reaches every role where it
/// listens, or, when `opts.peers` is set, through the link proxies (its own roles too).
fn write_configs(
    opts: &LocalOptions,
    nodes: &[String],
    ports: &BTreeMap<RoleKey, u16>,
) -> anyhow::Result<()> {
    let direct: BTreeMap<RoleKey, String> = ports
        .iter()
        .map(|(k, p)| (k.clone(), format!("127.0.0.1:{p}")))
        .collect();
    let settings = &opts.settings;
    for node in nodes {
        let addrs = opts
            .peers
            .as_ref()
            .and_then(|p| p.get(node))
            .unwrap_or(&direct);
        let cfg = pipeline::node_config_via(node, nodes, &direct, addrs, settings);
        let path = config_path(opts, node);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(&path, serde_json::to_vec_pretty(&cfg)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn role_args(opts: &LocalOptions, node: &str, role: Role, secret: &Path) -> Vec<String> {
    let data = opts
        .run_dir
        .join("nodes")
        .join(node)
        .join("data")
        .join(role.as_str());
    let mut extra = vec!["--watch-parent".to_owned(), std::process::id().to_string()];
    if let Some(flags) = opts.role_flags.get(&role) {
        extra.extend(flags.iter().cloned());
    }
    let files = pipeline::RoleFiles {
        config: &config_path(opts, node).display().to_string(),
        secret: &secret.display().to_string(),
        data_dir: &data.display().to_string(),
    };
    pipeline::role_args(node, role, files, &extra)
}

fn spawn(bin: &Path, args: &[String], log: &Path) -> anyhow::Result<Child> {
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening {}", log.display()))?;
    let err = out.try_clone()?;
    let child = Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    Ok(child)
}

impl LocalCluster {
    /// Starts every role on every node and waits until all answer `/health`.
    pub async fn start(opts: &LocalOptions) -> anyhow::Result<LocalCluster> {
        if !opts.pipeline_bin.is_file() {
            bail!(
                "pipeline binary '{}' not found; build it with `cargo build --release` or pass --pipeline-bin",
                opts.pipeline_bin.display()
            );
        }
        let nodes: Vec<String> = (1..=opts.nodes).map(|i| format!("n{i}")).collect();
        let keys: Vec<RoleKey> = nodes
            .iter()
            .flat_map(|n| ROLES.iter().map(move |r| (n.clone(), *r)))
            .collect();
        let ports: BTreeMap<RoleKey, u16> = match &opts.ports {
            Some(p) => p.clone(),
            None => keys.iter().cloned().zip(free_ports(keys.len())?).collect(),
        };
        write_configs(opts, &nodes, &ports)?;
        let secret_file = SecretFile::write(&opts.secret, &opts.run_dir)?;
        let secret_path = secret_file.path().to_owned();
        let mut cluster = LocalCluster {
            nodes: nodes.clone(),
            bin: opts.pipeline_bin.clone(),
            roles: BTreeMap::new(),
            secret: opts.secret.clone(),
            secret_file: std::sync::Mutex::new(Some(secret_file)),
        };
        for role in ROLES {
            for node in &nodes {
                let args = role_args(opts, node, role, &secret_path);
                let log = opts
                    .run_dir
                    .join("nodes")
                    .join(node)
                    .join(format!("{role}.log"));
                let child = match spawn(&opts.pipeline_bin, &args, &log) {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = cluster.stop().await;
                        return Err(e);
                    }
                };
                let key = (node.clone(), role);
                cluster.roles.insert(
                    key.clone(),
                    RoleProcess {
                        port: ports[&key],
                        child: Mutex::new(Some(child)),
                        args,
                        log,
                    },
                );
            }
            // The services elect leaders through the stores: start those first.
            if role == Role::Store {
                if let Err(e) = cluster.wait_healthy(&opts.run_dir).await {
                    let _ = cluster.stop().await;
                    return Err(e);
                }
            }
        }
        if let Err(e) = cluster.wait_healthy(&opts.run_dir).await {
            let _ = cluster.stop().await;
            return Err(e);
        }
        Ok(cluster)
    }

    async fn wait_healthy(&self, run_dir: &Path) -> anyhow::Result<()> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(500))
            .build()?;
        let deadline = Instant::now() + HEALTH_TIMEOUT;
        for ((node, role), proc_) in &self.roles {
            let url = format!("http://127.0.0.1:{}/health", proc_.port);
            loop {
                if let Some(child) = proc_.child.lock().await.as_mut() {
                    if let Some(status) = child.try_wait()? {
                        let log = run_dir.join("nodes").join(node).join(format!("{role}.log"));
                        let tail = std::fs::read_to_string(&log).unwrap_or_default();
                        let tail: Vec<&str> = tail.lines().rev().take(5).collect();
                        bail!("{node}/{role} exited with {status} during start; last log lines: {tail:?}");
                    }
                }
                if matches!(http.get(&url).send().await, Ok(r) if r.status().is_success()) {
                    break;
                }
                if Instant::now() > deadline {
                    bail!("{node}/{role} did not answer {url} within {HEALTH_TIMEOUT:?}");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(())
    }

    fn role(&self, node: &str, role: Role) -> anyhow::Result<&RoleProcess> {
        self.roles
            .get(&(node.to_owned(), role))
            .with_context(|| format!("no role {role} on node {node}"))
    }
}

#[async_trait]
impl nemesis::Control for LocalCluster {
    fn nodes(&self) -> Vec<String> {
        self.nodes.clone()
    }

    async fn pid(&self, node: &str, role: Role) -> anyhow::Result<u32> {
        let proc_ = self.role(node, role)?;
        let guard = proc_.child.lock().await;
        guard
            .as_ref()
            .and_then(Child::id)
            .with_context(|| format!("{node}/{role} is not running"))
    }

    async fn signal(&self, node: &str, pid: u32, signal: Signal) -> anyhow::Result<()> {
        nemesis::signal_local(pid, signal).with_context(|| node.to_owned())
    }

    fn authorization(&self) -> Option<reqwest::header::HeaderValue> {
        Some(self.secret.authorization())
    }

    async fn restart(&self, node: &str, role: Role) -> anyhow::Result<()> {
        let proc_ = self.role(node, role)?;
        let mut guard = proc_.child.lock().await;
        if let Some(child) = guard.as_mut() {
            if child.try_wait()?.is_none() {
                return Ok(());
            }
        }
        *guard = Some(spawn(&self.bin, &proc_.args, &proc_.log)?);
        Ok(())
    }
}

#[async_trait]
impl Cluster for LocalCluster {
    fn kind(&self) -> ClusterKind {
        ClusterKind::Local
    }

    fn url(&self, node: &str, role: Role) -> anyhow::Result<String> {
        Ok(format!("http://127.0.0.1:{}", self.role(node, role)?.port))
    }

    /// Resumes and terminates every process at once, then waits for each (SIGKILL after a
    /// grace). Terminating all together keeps a leader's successor from being elected in the
    /// moment between two stops.
    async fn stop(&self) -> anyhow::Result<()> {
        let mut stopping = Vec::new();
        for ((node, role), proc_) in &self.roles {
            let Some(child) = proc_.child.lock().await.take() else {
                continue;
            };
            if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
                let pid = Pid::from_raw(pid);
                let _ = kill(pid, NixSignal::SIGCONT);
                let _ = kill(pid, NixSignal::SIGTERM);
            }
            stopping.push((node, role, child));
        }
        for (node, role, mut child) in stopping {
            match tokio::time::timeout(STOP_GRACE, child.wait()).await {
                Ok(Ok(_)) => {}
                _ => {
                    tracing::warn!(
                        node,
                        role = role.as_str(),
                        "did not stop after SIGTERM; killing"
                    );
                    let _ = child.kill().await;
                }
            }
        }
        let file = self
            .secret_file
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(f) = file {
            f.remove()?;
        }
        Ok(())
    }
}
