//! One OpenSSH sshd per namespace of the netns cluster: host keys, a client key authorized on
//! every node, sshd configs, a known-hosts file and a nodes file, all in the state directory.
//!
//! State directory layout: `client_key`, `client_key.pub`, `authorized_keys`, `known_hosts`,
//! `nodes.toml`, and per node `<node>/ssh_host_ed25519_key`, `<node>/sshd_config`,
//! `<node>/sshd.pid`, `<node>/sshd.log`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::netns::{node_addr, nodes_file, ns_name, sh};

/// sshd's privilege-separation directory, which Debian creates only when its service starts.
const PRIVSEP_DIR: &str = "/run/sshd";

/// The sshd binary.
pub fn sshd_path() -> Option<PathBuf> {
    ["/usr/sbin/sshd", "/usr/local/sbin/sshd", "/sbin/sshd"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .or_else(|| super::netns::which("sshd"))
}

fn node_dir(state_dir: &Path, node: &str) -> PathBuf {
    state_dir.join(node)
}

/// True when `node`'s sshd (per its pid file) is alive.
pub fn sshd_alive(state_dir: &Path, node: &str) -> bool {
    let pidfile = node_dir(state_dir, node).join("sshd.pid");
    std::fs::read_to_string(pidfile)
        .ok()
        .and_then(|t| t.trim().parse::<i32>().ok())
        .is_some_and(|pid| nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok())
}

async fn keygen(path: &Path, comment: &str) -> anyhow::Result<()> {
    let p = path.to_str().context("state directory path is not UTF-8")?;
    sh(
        "ssh-keygen",
        &["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", p],
    )
    .await
    .map(|_| ())
}

fn sshd_config(state_dir: &Path, node: &str, addr: &str) -> String {
    let dir = node_dir(state_dir, node);
    format!(
        "# written by harness cluster up\n\
         ListenAddress {addr}\n\
         Port 22\n\
         HostKey {hostkey}\n\
         PidFile {pid}\n\
         AuthorizedKeysFile {auth}\n\
         PermitRootLogin prohibit-password\n\
         PubkeyAuthentication yes\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         UsePAM no\n\
         StrictModes no\n\
         UseDNS no\n\
         PrintMotd no\n\
         PrintLastLog no\n\
         MaxSessions 20\n\
         MaxStartups 100\n\
         LogLevel INFO\n",
        hostkey = dir.join("ssh_host_ed25519_key").display(),
        pid = dir.join("sshd.pid").display(),
        auth = state_dir.join("authorized_keys").display(),
    )
}

/// Generates keys and configs for `nodes`, starts one sshd in each node's namespace, and writes
/// `known_hosts` and `nodes.toml`.
pub async fn setup(state_dir: &Path, nodes: &[String]) -> anyhow::Result<()> {
    let sshd = sshd_path().context("sshd not found (install openssh-server)")?;
    let sshd = sshd.to_str().context("sshd path is not UTF-8")?.to_owned();
    if !Path::new(PRIVSEP_DIR).is_dir() {
        std::fs::create_dir_all(PRIVSEP_DIR).with_context(|| format!("creating {PRIVSEP_DIR}"))?;
    }
    let client_key = state_dir.join("client_key");
    keygen(&client_key, "harness-netns-client").await?;
    std::fs::copy(
        state_dir.join("client_key.pub"),
        state_dir.join("authorized_keys"),
    )?;
    let mut known_hosts = String::new();
    let mut nodes_toml = String::from(
        "# written by `harness cluster up`; usable with --cluster ssh --nodes-file\n\
         known_hosts = \"known_hosts\"\n",
    );
    for (i, node) in nodes.iter().enumerate() {
        let addr = node_addr(i + 1);
        let dir = node_dir(state_dir, node);
        std::fs::create_dir_all(&dir)?;
        let hostkey = dir.join("ssh_host_ed25519_key");
        keygen(&hostkey, &format!("harness-netns-{node}")).await?;
        let pubkey = std::fs::read_to_string(dir.join("ssh_host_ed25519_key.pub"))?;
        let mut fields = pubkey.split_whitespace();
        let (Some(kind), Some(b64)) = (fields.next(), fields.next()) else {
            bail!("{}: not a public key", hostkey.display());
        };
        writeln!(known_hosts, "{addr} {kind} {b64}")?;
        write!(
            nodes_toml,
            "\n[[node]]\nname = \"{node}\"\nhost = \"{addr}\"\nport = 22\nuser = \"root\"\nkey = \"client_key\"\n"
        )?;
        let config = dir.join("sshd_config");
        std::fs::write(&config, sshd_config(state_dir, node, &addr))?;
        let config = config
            .to_str()
            .context("state directory path is not UTF-8")?;
        let log = dir.join("sshd.log");
        let log = log.to_str().context("state directory path is not UTF-8")?;
        // sshd checks its config, binds, then daemonizes and writes its pid file.
        sh(
            "ip",
            &[
                "netns",
                "exec",
                &ns_name(node),
                &sshd,
                "-f",
                config,
                "-E",
                log,
            ],
        )
        .await
        .with_context(|| format!("starting sshd for {node}"))?;
    }
    std::fs::write(state_dir.join("known_hosts"), known_hosts)?;
    std::fs::write(nodes_file(state_dir), nodes_toml)?;
    Ok(())
}

/// Waits until `node`'s sshd accepts TCP connections on `addr:22`.
pub async fn wait_listening(node: &str, addr: &str, deadline: Instant) -> anyhow::Result<()> {
    loop {
        let attempt = tokio::time::timeout(
            Duration::from_millis(500),
            tokio::net::TcpStream::connect((addr, 22)),
        )
        .await;
        if matches!(attempt, Ok(Ok(_))) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{node}: sshd on {addr}:22 is not accepting connections");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
