//! The `netns` cluster (root): N network namespaces joined by a bridge, each with its own
//! address and its own OpenSSH sshd, so the harness reaches them over SSH exactly as it would
//! reach VMs. `harness cluster up|down|status` manages them.
//!
//! Everything made here carries the prefix `hns-` (namespaces `hns-n1`.., bridge `hns-br0`,
//! veths `hns-n1-h`) or the iptables comment `harness-netns`, so `down` finds exactly what it
//! made and nothing else, and can be run any number of times.
//!
//! Addresses: the bridge is `10.199.0.1/24`, node `nI` is `10.199.0.(10+I)`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::netns_sshd;

/// Prefix of every namespace and link this module makes.
pub const PREFIX: &str = "hns-";
/// The bridge joining the namespaces.
pub const BRIDGE: &str = "hns-br0";
/// The comment on every iptables rule this module adds.
pub const IPTABLES_COMMENT: &str = "harness-netns";
/// The first three octets of the cluster's /24.
pub const SUBNET: &str = "10.199.0";
/// Default node count of `harness cluster up`.
pub const DEFAULT_NODES: usize = formats::spec::DEFAULT_NETNS_NODES as usize;
/// Most nodes (addresses .11 to .19).
pub const MAX_NODES: usize = 9;
/// Default state directory (keys, sshd configs, the nodes file).
pub const DEFAULT_STATE_DIR: &str = formats::spec::DEFAULT_NETNS_STATE_DIR;
/// A file marking a state directory as ours, so `down` removes only such a directory.
const MARKER: &str = ".harness-netns";
/// How long every sshd gets to accept connections after `up`.
const SSHD_READY_TIMEOUT: Duration = Duration::from_secs(10);
/// Upper bound on iptables rules `down` removes (a guard against a rule that will not go).
const MAX_RULES: usize = 256;

/// Namespace name of `node`.
pub fn ns_name(node: &str) -> String {
    format!("{PREFIX}{node}")
}

/// Address of node number `i` (1-based).
pub fn node_addr(i: usize) -> String {
    format!("{SUBNET}.{}", 10 + i)
}

/// Node names of an `n`-node cluster.
pub fn node_names(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("n{i}")).collect()
}

/// The nodes file `up` writes into the state directory.
pub fn nodes_file(state_dir: &Path) -> PathBuf {
    state_dir.join("nodes.toml")
}

/// Runs a local command, returning stdout; a failure is one line quoting the command.
pub(crate) async fn sh(program: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = tokio::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .with_context(|| format!("running {program}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        bail!(
            "`{program} {}` failed: {}",
            args.join(" "),
            err.lines().last().unwrap_or("").trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Checks that the caller is root and the tools exist; the message says what is missing.
pub fn preflight() -> Result<(), String> {
    if !nix::unistd::geteuid().is_root() {
        return Err("the netns cluster needs root (network namespaces, a bridge, sshd)".into());
    }
    for tool in ["ip", "iptables", "ssh-keygen"] {
        if which(tool).is_none() {
            return Err(format!(
                "'{tool}' not found on PATH (install iproute2, iptables, openssh-client)"
            ));
        }
    }
    if netns_sshd::sshd_path().is_none() {
        return Err("'sshd' not found (install openssh-server)".into());
    }
    Ok(())
}

/// The full path of `tool` on PATH (or in /usr/sbin, /sbin).
pub fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .map(|d| Path::new(d).join(tool))
        .find(|p| p.is_file());
    found
}

/// What `status` found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    /// Our namespaces, with whether their sshd is alive.
    pub namespaces: Vec<(String, bool)>,
    /// Our links (bridge and veths) in the host namespace.
    pub links: Vec<String>,
    /// Our iptables rules, as `iptables -S` prints them.
    pub rules: Vec<String>,
    /// Node count in the state directory's nodes file, if there is one.
    pub nodes_in_state: Option<usize>,
}

impl Status {
    /// True when the state lists `n` nodes and all `n` namespaces run sshd on the bridge.
    pub fn is_up(&self) -> bool {
        match self.nodes_in_state {
            Some(n) => {
                n > 0
                    && self.namespaces.len() == n
                    && self.namespaces.iter().all(|(_, alive)| *alive)
                    && self.links.iter().any(|l| l == BRIDGE)
            }
            None => false,
        }
    }

    /// True when nothing of ours is left.
    pub fn is_clean(&self) -> bool {
        self.namespaces.is_empty() && self.links.is_empty() && self.rules.is_empty()
    }
}

/// Our namespaces.
pub async fn namespaces() -> anyhow::Result<Vec<String>> {
    let out = sh("ip", &["netns", "list"]).await?;
    let mut found: Vec<String> = out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(PREFIX))
        .map(str::to_owned)
        .collect();
    found.sort();
    Ok(found)
}

/// Our links in the host namespace.
pub fn links() -> Vec<String> {
    let mut found: Vec<String> = std::fs::read_dir("/sys/class/net")
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(PREFIX))
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

/// Our iptables rules (filter table), as `-A ...` lines.
pub async fn rules() -> anyhow::Result<Vec<String>> {
    let out = sh("iptables", &["-w", "-S"]).await?;
    Ok(out
        .lines()
        .filter(|l| l.starts_with("-A ") && l.contains(IPTABLES_COMMENT))
        .map(str::to_owned)
        .collect())
}

/// Looks at what exists now.
pub async fn status(state_dir: &Path) -> anyhow::Result<Status> {
    let mut namespaces_alive = Vec::new();
    for ns in namespaces().await? {
        let node = ns.trim_start_matches(PREFIX).to_owned();
        let alive = netns_sshd::sshd_alive(state_dir, &node);
        namespaces_alive.push((ns, alive));
    }
    let nodes_in_state = std::fs::read_to_string(nodes_file(state_dir))
        .ok()
        .map(|t| t.matches("[[node]]").count());
    Ok(Status {
        namespaces: namespaces_alive,
        links: links(),
        rules: rules().await?,
        nodes_in_state,
    })
}

/// Brings up an `n`-node cluster with its state in `state_dir`. A cluster that is already up
/// with `n` nodes is left as it is; anything else of ours is torn down first. On failure
/// everything made so far is removed again.
pub async fn up(n: usize, state_dir: &Path) -> anyhow::Result<Status> {
    if !(1..=MAX_NODES).contains(&n) {
        bail!("--nodes {n}: must be between 1 and {MAX_NODES}");
    }
    let before = status(state_dir).await?;
    if before.is_up() && before.nodes_in_state == Some(n) {
        return Ok(before);
    }
    if !before.is_clean() {
        down(state_dir).await?;
    }
    if let Err(e) = build(n, state_dir).await {
        if let Err(d) = down(state_dir).await {
            tracing::warn!(
                error = format!("{d:#}"),
                "cleanup after a failed cluster up"
            );
        }
        return Err(e);
    }
    status(state_dir).await
}

async fn build(n: usize, state_dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(state_dir)
        .with_context(|| format!("creating {}", state_dir.display()))?;
    std::fs::write(state_dir.join(MARKER), b"made by harness cluster up\n")?;
    sh("ip", &["link", "add", BRIDGE, "type", "bridge"]).await?;
    sh(
        "ip",
        &["addr", "add", &format!("{SUBNET}.1/24"), "dev", BRIDGE],
    )
    .await?;
    sh("ip", &["link", "set", BRIDGE, "up"]).await?;
    // A host with br_netfilter and a DROP forward policy (Docker's) would drop traffic between
    // the namespaces; let bridge-internal traffic through.
    sh(
        "iptables",
        &[
            "-w",
            "-I",
            "FORWARD",
            "-i",
            BRIDGE,
            "-o",
            BRIDGE,
            "-m",
            "comment",
            "--comment",
            IPTABLES_COMMENT,
            "-j",
            "ACCEPT",
        ],
    )
    .await?;
    let names = node_names(n);
    for (i, node) in names.iter().enumerate() {
        add_namespace(node, &node_addr(i + 1)).await?;
    }
    netns_sshd::setup(state_dir, &names).await?;
    let deadline = Instant::now() + SSHD_READY_TIMEOUT;
    for (i, node) in names.iter().enumerate() {
        netns_sshd::wait_listening(node, &node_addr(i + 1), deadline).await?;
    }
    Ok(())
}

async fn add_namespace(node: &str, addr: &str) -> anyhow::Result<()> {
    let ns = ns_name(node);
    let host_end = format!("{ns}-h");
    let ns_end = format!("{ns}-p");
    sh("ip", &["netns", "add", &ns]).await?;
    sh(
        "ip",
        &[
            "link", "add", &host_end, "type", "veth", "peer", "name", &ns_end,
        ],
    )
    .await?;
    sh("ip", &["link", "set", &ns_end, "netns", &ns]).await?;
    sh("ip", &["link", "set", &host_end, "master", BRIDGE, "up"]).await?;
    sh("ip", &["-n", &ns, "link", "set", &ns_end, "name", "eth0"]).await?;
    sh(
        "ip",
        &[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{addr}/24"),
            "dev",
            "eth0",
        ],
    )
    .await?;
    sh("ip", &["-n", &ns, "link", "set", "eth0", "up"]).await?;
    sh("ip", &["-n", &ns, "link", "set", "lo", "up"]).await?;
    Ok(())
}

/// What `down` removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Removed {
    /// Namespaces deleted.
    pub namespaces: usize,
    /// Processes killed inside them (sshd, pipeline roles, ssh sessions).
    pub processes: usize,
    /// Links deleted.
    pub links: usize,
    /// iptables rules deleted.
    pub rules: usize,
}

/// Removes every namespace, link and iptables rule of ours, and the state directory if it is
/// ours. Idempotent: with nothing to remove it does nothing and succeeds.
pub async fn down(state_dir: &Path) -> anyhow::Result<Removed> {
    let mut removed = Removed::default();
    for ns in namespaces().await? {
        let pids = sh("ip", &["netns", "pids", &ns]).await.unwrap_or_default();
        for pid in pids
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
        {
            let pid = nix::unistd::Pid::from_raw(pid);
            if nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).is_ok() {
                removed.processes += 1;
            }
        }
        sh("ip", &["netns", "del", &ns]).await?;
        removed.namespaces += 1;
    }
    // Deleting a namespace deletes its veth ends; the host ends follow. Whatever is left:
    for link in links() {
        match sh("ip", &["link", "del", &link]).await {
            Ok(_) => removed.links += 1,
            Err(e) if !Path::new("/sys/class/net").join(&link).exists() => {
                tracing::debug!(error = format!("{e:#}"), "link already gone");
            }
            Err(e) => return Err(e),
        }
    }
    for _ in 0..MAX_RULES {
        let Some(rule) = rules().await?.into_iter().next() else {
            break;
        };
        let mut args: Vec<&str> = vec!["-w"];
        args.extend(rule.split_whitespace());
        args[1] = "-D";
        sh("iptables", &args).await?;
        removed.rules += 1;
    }
    if !rules().await?.is_empty() {
        bail!("iptables rules tagged {IPTABLES_COMMENT} remain after {MAX_RULES} deletions");
    }
    if state_dir.join(MARKER).is_file() {
        std::fs::remove_dir_all(state_dir)
            .with_context(|| format!("removing {}", state_dir.display()))?;
    }
    Ok(removed)
}
