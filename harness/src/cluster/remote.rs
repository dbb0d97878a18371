//! A cluster of nodes reached through [`Remote`]s (SSH to VMs or to network namespaces): the
//! pipeline deployed into a per-run directory on each node, one daemon per role, each role on a
//! fixed port of its node's own address.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use async_trait::async_trait;
use formats::spec::ClusterKind;
use formats::Role;
use futures::future::join_all;
use nemesis::{Gone, Signal};
use tokio::sync::Mutex;

use super::deploy::{self, NodeDir};
use super::pipeline::{self, ROLES};
use super::secret::{ClusterSecret, SecretFile};
use super::Cluster;
use crate::remote::{ExecOutput, Remote};

/// Port of the first role; role `i` of [`ROLES`] listens on `BASE_PORT + i`.
pub const BASE_PORT: u16 = 7101;
/// How long roles get to answer `/health` after start, unless the nodes file's `[timing]`
/// says otherwise.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(30);
/// Timeout of a signal or other small command.
const SIGNAL_TIMEOUT: Duration = Duration::from_secs(10);
/// Log lines quoted when a role fails to start.
const TAIL_LINES: usize = 5;

/// One node: its name, the address its services listen on, and how to reach it.
#[derive(Clone)]
pub struct RemoteNode {
    /// `n1`.
    pub name: String,
    /// IP address or host name the services bind to and the harness calls.
    pub addr: String,
    /// Commands and files.
    pub remote: Arc<dyn Remote>,
}

/// What to deploy and where.
#[derive(Debug, Clone)]
pub struct RemoteOptions {
    /// `netns` or `ssh`.
    pub kind: ClusterKind,
    /// Base directory for runs on the nodes.
    pub workdir: String,
    /// Name of this run's directory below `workdir` (the run's timestamp).
    pub run_name: String,
    /// The local run directory: logs are fetched to `nodes/<node>/<role>.log`.
    pub run_dir: PathBuf,
    /// The `pipeline` binary to upload.
    pub pipeline_bin: PathBuf,
    /// The fault proxy binary to upload, if there is one.
    pub faultproxy_bin: Option<PathBuf>,
    /// Extra flags per role.
    pub role_flags: BTreeMap<Role, Vec<String>>,
    /// The `settings` of every node's config (contract §1).
    pub settings: serde_json::Value,
    /// The cluster secret, uploaded to each node beside its config.
    pub secret: ClusterSecret,
    /// How long roles get to answer `/health` after a start.
    pub health_timeout: Duration,
    /// A folder of VM records (console logs, boot times) copied into the run directory's
    /// `vms/` when the cluster stops.
    pub vms_dir: Option<PathBuf>,
}

/// The port `role` listens on.
pub fn role_port(role: Role) -> u16 {
    let i = ROLES
        .iter()
        .position(|r| *r == role)
        .expect("every role is in ROLES");
    // ROLES has five entries: the sum never leaves u16.
    BASE_PORT + i as u16
}

fn host_port(addr: &str, port: u16) -> String {
    if addr.contains(':') {
        format!("[{addr}]:{port}")
    } else {
        format!("{addr}:{port}")
    }
}

/// The pipeline, deployed on remote nodes.
pub struct RemoteCluster {
    kind: ClusterKind,
    nodes: Vec<RemoteNode>,
    dirs: BTreeMap<String, NodeDir>,
    args: BTreeMap<(String, Role), Vec<String>>,
    run_dir: PathBuf,
    secret: ClusterSecret,
    health_timeout: Duration,
    vms_dir: Option<PathBuf>,
    stopped: Mutex<bool>,
}

impl RemoteCluster {
    /// Uploads the binaries to every node, starts every role and waits until all answer
    /// `/health`. On failure everything started is stopped and removed again.
    pub async fn deploy(nodes: Vec<RemoteNode>, opts: &RemoteOptions) -> anyhow::Result<Self> {
        if !opts.pipeline_bin.is_file() {
            bail!(
                "pipeline binary '{}' not found; build it or pass --pipeline-bin",
                opts.pipeline_bin.display()
            );
        }
        let names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
        let settings = &opts.settings;
        let mut dirs = BTreeMap::new();
        let mut args = BTreeMap::new();
        for n in &nodes {
            let dir = NodeDir::new(&opts.workdir, &opts.run_name, &n.name);
            // This node's config (contract §1): its own roles at the address they bind, the
            // other nodes' roles at those nodes' addresses.
            let mut addrs = BTreeMap::new();
            for m in &nodes {
                let host = if m.name == n.name {
                    bind_ip(&m.addr)
                } else {
                    m.addr.clone()
                };
                for role in ROLES {
                    addrs.insert((m.name.clone(), role), host_port(&host, role_port(role)));
                }
            }
            let cfg = pipeline::node_config(&n.name, &names, &addrs, settings);
            let local_cfg = config_file(&opts.run_dir, &n.name);
            if let Some(parent) = local_cfg.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            std::fs::write(&local_cfg, serde_json::to_vec_pretty(&cfg)?)
                .with_context(|| format!("writing {}", local_cfg.display()))?;
            for role in ROLES {
                let extra = opts.role_flags.get(&role).cloned().unwrap_or_default();
                let files = pipeline::RoleFiles {
                    config: &dir.config(),
                    secret: &dir.secret(),
                    data_dir: &dir.data(role.as_str()),
                };
                let line = pipeline::role_args(&n.name, role, files, &extra);
                args.insert((n.name.clone(), role), line);
            }
            dirs.insert(n.name.clone(), dir);
        }
        let cluster = RemoteCluster {
            kind: opts.kind,
            nodes,
            dirs,
            args,
            run_dir: opts.run_dir.clone(),
            secret: opts.secret.clone(),
            health_timeout: opts.health_timeout,
            vms_dir: opts.vms_dir.clone(),
            stopped: Mutex::new(false),
        };
        if let Err(e) = cluster.install_and_start(opts).await {
            if let Err(stop) = cluster.stop().await {
                tracing::warn!(error = format!("{stop:#}"), "cleanup after a failed deploy");
            }
            return Err(e);
        }
        Ok(cluster)
    }

    async fn install_and_start(&self, opts: &RemoteOptions) -> anyhow::Result<()> {
        let mut bins = vec![("pipeline".to_owned(), opts.pipeline_bin.clone())];
        if let Some(fp) = &opts.faultproxy_bin {
            bins.push(("faultproxy".to_owned(), fp.clone()));
        }
        let installs = self.nodes.iter().map(|n| {
            let bins = bins.clone();
            async move { deploy::install(n.remote.as_ref(), &self.dirs[&n.name], &bins).await }
        });
        join_all(installs)
            .await
            .into_iter()
            .collect::<anyhow::Result<Vec<()>>>()?;
        let configs = self.nodes.iter().map(|n| async move {
            let local = config_file(&self.run_dir, &n.name);
            n.remote
                .upload(&local, &self.dirs[&n.name].config(), 0o644)
                .await
                .with_context(|| format!("{}: uploading {}", n.name, local.display()))
        });
        join_all(configs)
            .await
            .into_iter()
            .collect::<anyhow::Result<Vec<()>>>()?;
        // The secret goes up from a private file outside the run directory, removed once
        // every node has it.
        let local = SecretFile::write(&self.secret, &self.run_dir)?;
        let secrets = self.nodes.iter().map(|n| {
            let path = local.path();
            async move {
                n.remote
                    .upload(path, &self.dirs[&n.name].secret(), 0o600)
                    .await
                    .with_context(|| format!("{}: uploading the cluster secret", n.name))
            }
        });
        let uploaded = join_all(secrets)
            .await
            .into_iter()
            .collect::<anyhow::Result<Vec<()>>>();
        local.remove()?;
        uploaded?;
        let starts = self.nodes.iter().map(|n| async move {
            let launches = ROLES
                .iter()
                .map(|role| self.launch(&n.name, *role))
                .collect::<anyhow::Result<Vec<_>>>()?;
            deploy::start_roles(n.remote.as_ref(), &self.dirs[&n.name], &launches).await
        });
        join_all(starts)
            .await
            .into_iter()
            .collect::<anyhow::Result<Vec<Vec<u32>>>>()?;
        let deadline = Instant::now() + self.health_timeout;
        let waits = self.nodes.iter().flat_map(|n| {
            ROLES
                .iter()
                .map(move |role| self.wait_healthy(&n.name, *role, deadline))
        });
        join_all(waits)
            .await
            .into_iter()
            .collect::<anyhow::Result<Vec<()>>>()?;
        Ok(())
    }

    fn node(&self, node: &str) -> anyhow::Result<(&RemoteNode, &NodeDir)> {
        let n = self
            .nodes
            .iter()
            .find(|n| n.name == node)
            .with_context(|| format!("no node '{node}' in the cluster"))?;
        Ok((n, &self.dirs[node]))
    }

    fn launch(&self, node: &str, role: Role) -> anyhow::Result<deploy::Launch> {
        let args = self
            .args
            .get(&(node.to_owned(), role))
            .with_context(|| format!("no role {role} on node {node}"))?;
        Ok(deploy::Launch {
            role: role.as_str().to_owned(),
            program: "pipeline".to_owned(),
            args: args.clone(),
        })
    }

    /// Starts `role` on `node` (without waiting for health); returns its pid.
    pub async fn start_role(&self, node: &str, role: Role) -> anyhow::Result<u32> {
        let (n, dir) = self.node(node)?;
        let launch = self.launch(node, role)?;
        let pids = deploy::start_roles(n.remote.as_ref(), dir, &[launch])
            .await
            .with_context(|| format!("{node}/{role}"))?;
        pids.first()
            .copied()
            .with_context(|| format!("{node}/{role}: no pid"))
    }

    /// Stops `role` on `node` (SIGTERM, then SIGKILL after a grace period).
    pub async fn stop_role(&self, node: &str, role: Role) -> anyhow::Result<()> {
        let (n, dir) = self.node(node)?;
        deploy::stop_roles(n.remote.as_ref(), dir, &[role.as_str()]).await
    }

    /// Stops and starts `role` on `node` and waits for its `/health`.
    pub async fn restart_role(&self, node: &str, role: Role) -> anyhow::Result<u32> {
        self.stop_role(node, role).await?;
        let pid = self.start_role(node, role).await?;
        self.wait_healthy(node, role, Instant::now() + self.health_timeout)
            .await?;
        Ok(pid)
    }

    /// Base URL of `role` on `node`: `http://<addr>:<port>`.
    pub fn role_url(&self, node: &str, role: Role) -> anyhow::Result<String> {
        let (n, _) = self.node(node)?;
        Ok(format!("http://{}", host_port(&n.addr, role_port(role))))
    }

    /// Runs a shell command on `node` (for iptables faults and the like).
    pub async fn exec(
        &self,
        node: &str,
        command: &str,
        timeout: Duration,
    ) -> anyhow::Result<ExecOutput> {
        let (n, _) = self.node(node)?;
        Ok(n.remote.exec(command, timeout).await?)
    }

    async fn wait_healthy(&self, node: &str, role: Role, deadline: Instant) -> anyhow::Result<()> {
        let role_name = role.as_str();
        /// Every this many polls, check that the process is still alive.
        const ALIVE_EVERY_POLLS: u32 = 10;
        let (n, dir) = self.node(node)?;
        let url = format!("{}/health", self.role_url(node, role)?);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(500))
            .build()?;
        for poll in 1u32.. {
            if matches!(http.get(&url).send().await, Ok(r) if r.status().is_success()) {
                return Ok(());
            }
            let expired = Instant::now() > deadline;
            if expired || poll % ALIVE_EVERY_POLLS == 0 {
                let alive = deploy::alive(n.remote.as_ref(), dir, role_name).await?;
                if !alive || expired {
                    let tail =
                        deploy::log_tail(n.remote.as_ref(), dir, role_name, TAIL_LINES).await;
                    if !alive {
                        bail!("{node}/{role} exited during start; last log lines: {tail}");
                    }
                    bail!(
                        "{node}/{role} did not answer {url} within {:?}; last log lines: {tail}",
                        self.health_timeout
                    );
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        unreachable!("the poll loop returns or bails")
    }

    async fn teardown_node(&self, n: &RemoteNode) -> anyhow::Result<()> {
        let dir = &self.dirs[&n.name];
        let r = n.remote.as_ref();
        let started = Instant::now();
        let names: Vec<&str> = ROLES.iter().map(|r| r.as_str()).collect();
        let mut first_err = deploy::stop_roles(r, dir, &names).await.err();
        let stopped_ms = started.elapsed().as_millis() as u64;
        let local = self.run_dir.join("nodes").join(&n.name);
        if let Err(e) = deploy::fetch_logs(r, dir, &names, &local).await {
            tracing::warn!(node = n.name, error = format!("{e:#}"), "fetching logs");
        }
        if let Err(e) = deploy::remove(r, dir).await {
            first_err.get_or_insert(e);
        }
        tracing::info!(
            node = n.name,
            stopped_ms,
            total_ms = started.elapsed().as_millis() as u64,
            "node torn down"
        );
        first_err.map_or(Ok(()), Err)
    }
}

/// Sends `signal` to `pid` on the remote with `kill -s`. A process that is gone is [`Gone`],
/// as for [`nemesis::signal_local`] (a heal treats it as done).
pub async fn remote_signal(remote: &dyn Remote, pid: u32, signal: Signal) -> anyhow::Result<()> {
    let out = remote
        .exec(&format!("kill -s {} {pid}", signal.name()), SIGNAL_TIMEOUT)
        .await?;
    if out.success() {
        return Ok(());
    }
    if out.stderr_text().to_lowercase().contains("no such process") {
        return Err(Gone(format!("{}: process {pid}", remote.node())).into());
    }
    bail!(
        "{}: kill -s {} {pid}: {}",
        remote.node(),
        signal.name(),
        out.stderr_last_line()
    )
}

#[async_trait]
impl nemesis::Control for RemoteCluster {
    fn nodes(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.name.clone()).collect()
    }

    async fn pid(&self, node: &str, role: Role) -> anyhow::Result<u32> {
        let (n, dir) = self.node(node)?;
        deploy::pid(n.remote.as_ref(), dir, role.as_str())
            .await
            .with_context(|| format!("{node}/{role}"))
    }

    async fn signal(&self, node: &str, pid: u32, signal: Signal) -> anyhow::Result<()> {
        let (n, _) = self.node(node)?;
        remote_signal(n.remote.as_ref(), pid, signal).await
    }

    async fn exec(&self, node: &str, cmd: &str) -> anyhow::Result<ExecOutput> {
        RemoteCluster::exec(self, node, cmd, NEMESIS_EXEC_TIMEOUT).await
    }

    fn role_url(&self, node: &str, role: Role) -> anyhow::Result<String> {
        RemoteCluster::role_url(self, node, role)
    }

    fn authorization(&self) -> Option<reqwest::header::HeaderValue> {
        Some(self.secret.authorization())
    }

    async fn restart(&self, node: &str, role: Role) -> anyhow::Result<()> {
        self.restart_role(node, role).await.map(|_| ())
    }

    fn node_ip(&self, node: &str) -> Option<String> {
        self.nodes
            .iter()
            .find(|n| n.name == node)
            .map(|n| n.addr.clone())
    }
}

/// Where the config of `node` is kept in the local run directory.
fn config_file(run_dir: &std::path::Path, node: &str) -> PathBuf {
    run_dir.join("nodes").join(node).join("config.json")
}

/// The address a node's roles bind: the node's own address when it is an IP; a host name may
/// not resolve to an interface, so then every interface.
fn bind_ip(addr: &str) -> String {
    addr.parse::<std::net::IpAddr>()
        .map_or_else(|_| "0.0.0.0".to_owned(), |ip| ip.to_string())
}

/// Where a run directory keeps the VM records of its nodes file's `vms_dir`.
pub const VMS_DIR: &str = "vms";

/// How long one nemesis command (iptables, kill) may take on a node.
const NEMESIS_EXEC_TIMEOUT: Duration = Duration::from_secs(30);

#[async_trait]
impl Cluster for RemoteCluster {
    fn kind(&self) -> ClusterKind {
        self.kind
    }

    fn url(&self, node: &str, role: Role) -> anyhow::Result<String> {
        self.role_url(node, role)
    }

    /// Stops every role (resuming paused ones), fetches the logs into the run directory and
    /// removes what was uploaded. Idempotent.
    async fn stop(&self) -> anyhow::Result<()> {
        let mut stopped = self.stopped.lock().await;
        if *stopped {
            return Ok(());
        }
        *stopped = true;
        let results = join_all(self.nodes.iter().map(|n| self.teardown_node(n))).await;
        if let Some(from) = &self.vms_dir {
            let to = self.run_dir.join(VMS_DIR);
            match crate::nodes_file::copy_vm_records(from, &to) {
                Ok(n) => tracing::info!(files = n, to = %to.display(), "VM records copied"),
                Err(e) => tracing::warn!(error = %e, from = %from.display(), "copying VM records"),
            }
        }
        results
            .into_iter()
            .collect::<anyhow::Result<Vec<()>>>()
            .map(|_| ())
    }
}
