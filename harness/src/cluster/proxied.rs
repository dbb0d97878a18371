//! The local cluster's proxy layer: one `faultproxy` per run (or an external Toxiproxy given by
//! `--toxiproxy`), one proxy per link (from node, to node, role; a node to itself too) named by
//! [`nemesis::links::proxy_name`], and for each node the `peers` map through those proxies
//! (docs/contracts.md §1), so partitions and toxics work on loopback without root.
//! [`WithProxy`] hands the nemesis a cluster together with the proxy API.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use async_trait::async_trait;
use formats::Role;
use nemesis::links::Link;
use nemesis::toxiproxy::{NewProxy, ToxiproxyClient};
use nemesis::{Control, ExecOutput, Signal};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::pipeline::RoleKey;
use super::Cluster;

/// How long `faultproxy` gets to print its address.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `faultproxy` gets to exit after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// Node → (node, role) → `host:port` this node uses to reach that role.
pub type PeersByNode = BTreeMap<String, BTreeMap<RoleKey, String>>;

/// A Toxiproxy-compatible API and the links the run created on it.
pub struct ProxyLayer {
    client: ToxiproxyClient,
    child: Option<Child>,
    links: Vec<String>,
}

impl ProxyLayer {
    /// Starts `faultproxy` (`bin`) on a free loopback port; it exits with this process.
    pub async fn start(bin: &Path, log: &Path, seed: u64) -> anyhow::Result<ProxyLayer> {
        if !bin.is_file() {
            bail!(
                "faultproxy binary '{}' not found; build it with `cargo build -p faultproxy` or pass --faultproxy-bin",
                bin.display()
            );
        }
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let err =
            std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let mut child = Command::new(bin)
            .args(["--listen", "127.0.0.1:0", "--seed", &seed.to_string()])
            .args(["--watch-parent", &std::process::id().to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(err)
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stdout = child.stdout.take().context("faultproxy stdout")?;
        let mut line = String::new();
        let mut reader = BufReader::new(stdout);
        let read = reader.read_line(&mut line);
        match tokio::time::timeout(START_TIMEOUT, read).await {
            Ok(Ok(n)) if n > 0 => {}
            _ => bail!("faultproxy did not report its address within {START_TIMEOUT:?}"),
        }
        let addr = line
            .trim()
            .strip_prefix("faultproxy: listening on ")
            .with_context(|| format!("unexpected faultproxy banner {line:?}"))?;
        let client = ToxiproxyClient::new(&format!("http://{addr}"))?;
        Ok(ProxyLayer {
            client,
            child: Some(child),
            links: Vec::new(),
        })
    }

    /// Uses a Toxiproxy-compatible server that is already running (`--toxiproxy URL`).
    pub async fn external(url: &str) -> anyhow::Result<ProxyLayer> {
        let client = ToxiproxyClient::new(url)?;
        client
            .version()
            .await
            .with_context(|| format!("--toxiproxy '{url}' does not answer"))?;
        Ok(ProxyLayer {
            client,
            child: None,
            links: Vec::new(),
        })
    }

    /// The API's base URL.
    pub fn api(&self) -> &str {
        self.client.base()
    }

    /// Creates a proxy for every link to the roles at `addrs` ((node, role) → `host:port`),
    /// a node's links to its own roles included, and returns each node's peers: every role,
    /// its own too, through a link proxy, so that a fault on the links into a role covers every
    /// call to it.
    pub async fn link(&mut self, addrs: &BTreeMap<RoleKey, String>) -> anyhow::Result<PeersByNode> {
        let nodes: Vec<&String> = addrs
            .keys()
            .map(|(n, _)| n)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut wanted = Vec::new();
        for from in &nodes {
            for ((to, role), upstream) in addrs {
                let link = Link::new(from, to, role.as_str()).with_context(|| {
                    format!("node or role name unusable in a proxy name: {from} {to} {role}")
                })?;
                wanted.push((link, upstream.clone()));
            }
        }
        let news: Vec<NewProxy> = wanted
            .iter()
            .map(|(l, up)| NewProxy {
                name: l.proxy_name(),
                listen: "127.0.0.1:0".into(),
                upstream: up.clone(),
                enabled: Some(true),
            })
            .collect();
        let made = self
            .client
            .populate(&news)
            .await
            .context("creating the link proxies")?;
        self.links = made.iter().map(|p| p.name.clone()).collect();
        let listen: BTreeMap<String, String> =
            made.into_iter().map(|p| (p.name, p.listen)).collect();
        let mut peers = PeersByNode::new();
        for from in nodes {
            let mut map = BTreeMap::new();
            for (to, role) in addrs.keys() {
                let name = nemesis::links::proxy_name(from, to, role.as_str());
                let via = listen
                    .get(&name)
                    .cloned()
                    .with_context(|| format!("proxy {name} was not created"))?;
                map.insert((to.clone(), *role), via);
            }
            peers.insert(from.clone(), map);
        }
        Ok(peers)
    }

    /// Stops the faultproxy this run started, or removes the run's proxies from an external
    /// server. Idempotent.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        match self.child.take() {
            Some(mut child) => {
                if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGTERM,
                    );
                }
                if tokio::time::timeout(STOP_GRACE, child.wait())
                    .await
                    .is_err()
                {
                    let _ = child.kill().await;
                }
            }
            None => {
                for name in std::mem::take(&mut self.links) {
                    match self.client.delete_proxy(&name).await {
                        Err(e) if !e.is_not_found() => return Err(e.into()),
                        _ => {}
                    }
                }
            }
        }
        Ok(())
    }
}

/// The `faultproxy` binary: the flag, or the file next to this executable.
pub fn faultproxy_bin(flag: Option<&PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(p) = flag {
        return Ok(p.clone());
    }
    let exe = std::env::current_exe().context("locating the harness binary")?;
    Ok(exe.with_file_name("faultproxy"))
}

/// A cluster as the nemesis drives it: every [`Control`] call goes to the cluster, role URLs come
/// from [`Cluster::url`], and the proxy API (if any) is the run's link layer.
pub struct WithProxy {
    inner: std::sync::Arc<dyn Cluster>,
    api: Option<String>,
}

impl WithProxy {
    /// Wraps `inner`; `api` is the proxy layer's URL.
    pub fn new(inner: std::sync::Arc<dyn Cluster>, api: Option<String>) -> WithProxy {
        WithProxy { inner, api }
    }
}

#[async_trait]
impl Control for WithProxy {
    fn nodes(&self) -> Vec<String> {
        self.inner.nodes()
    }

    async fn pid(&self, node: &str, role: Role) -> anyhow::Result<u32> {
        self.inner.pid(node, role).await
    }

    async fn signal(&self, node: &str, pid: u32, signal: Signal) -> anyhow::Result<()> {
        self.inner.signal(node, pid, signal).await
    }

    async fn exec(&self, node: &str, cmd: &str) -> anyhow::Result<ExecOutput> {
        self.inner.exec(node, cmd).await
    }

    fn role_url(&self, node: &str, role: Role) -> anyhow::Result<String> {
        self.inner.url(node, role)
    }

    async fn restart(&self, node: &str, role: Role) -> anyhow::Result<()> {
        self.inner.restart(node, role).await
    }

    fn node_ip(&self, node: &str) -> Option<String> {
        self.inner.node_ip(node)
    }

    fn proxy_api(&self) -> Option<String> {
        self.api.clone().or_else(|| self.inner.proxy_api())
    }

    fn authorization(&self) -> Option<reqwest::header::HeaderValue> {
        self.inner.authorization()
    }
}
