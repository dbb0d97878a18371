//! What the nemesis needs from the cluster and the history, as traits the harness implements.

use async_trait::async_trait;
use formats::history::{OpType, F};
use formats::Role;

/// Signals the nemesis sends to role processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Signal {
    /// SIGSTOP: freeze.
    Stop,
    /// SIGCONT: resume.
    Cont,
    /// SIGKILL: crash.
    Kill,
}

impl Signal {
    /// The name `kill -s` takes.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Stop => "STOP",
            Signal::Cont => "CONT",
            Signal::Kill => "KILL",
        }
    }
}

/// What a command run on a node did: the one shape every remote and cluster returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOutput {
    /// The exit code; `None` when the command died of a signal.
    pub code: Option<i32>,
    /// Everything it wrote to stdout.
    pub stdout: Vec<u8>,
    /// Everything it wrote to stderr.
    pub stderr: Vec<u8>,
}

impl ExecOutput {
    /// True when the command exited with 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// Stdout as text (lossy).
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Stderr as text (lossy).
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// The last non-empty stderr line, for one-line error messages.
    pub fn stderr_last_line(&self) -> String {
        self.stderr_text()
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim()
            .to_owned()
    }
}

/// Sends `signal` to a process on this machine. A process that no longer exists is [`Gone`]
/// for every signal: the caller decides what that means (a heal treats it as done, a fault
/// start as a failed start). Used by every cluster whose processes are local (local, netns,
/// and `harness heal`).
pub fn signal_local(pid: u32, signal: Signal) -> anyhow::Result<()> {
    use nix::sys::signal::{kill, Signal as Nix};
    let raw = i32::try_from(pid).map_err(|_| anyhow::anyhow!("pid {pid} out of range"))?;
    let sig = match signal {
        Signal::Stop => Nix::SIGSTOP,
        Signal::Cont => Nix::SIGCONT,
        Signal::Kill => Nix::SIGKILL,
    };
    match kill(nix::unistd::Pid::from_raw(raw), sig) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::ESRCH) => Err(Gone(format!("process {pid}")).into()),
        Err(e) => Err(anyhow::anyhow!("kill -{} {pid}: {e}", signal.name())),
    }
}

/// A cluster that cannot do what was asked (e.g. `exec` on a local cluster).
#[derive(Debug, Clone, thiserror::Error)]
#[error("this cluster does not support {0}")]
pub struct Unsupported(pub &'static str);

/// The target of an operation no longer exists (the node, namespace, process or proxy server
/// is gone). Heals treat it as success: there is nothing left to restore.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0} is gone")]
pub struct Gone(pub String);

/// True when `e` says the target is gone.
pub fn is_gone(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<Gone>().is_some())
}

/// The cluster as the nemesis sees it. Only `nodes`, `pid` and `signal` are required; every
/// other capability has a default that reports [`Unsupported`] (or `None`), and the faults that
/// need it fail to start with that message.
#[async_trait]
pub trait Control: Send + Sync {
    /// Node names, in order (`n1`, `n2`, ...).
    fn nodes(&self) -> Vec<String>;
    /// The pid of `role` on `node` right now.
    async fn pid(&self, node: &str, role: Role) -> anyhow::Result<u32>;
    /// Sends `signal` to `pid` on `node`. A process that no longer exists is [`Gone`] (heals
    /// treat that as done).
    async fn signal(&self, node: &str, pid: u32, signal: Signal) -> anyhow::Result<()>;

    /// Runs the shell command `cmd` (`sh -c`) as root on `node`. `Err` only when it could not
    /// be run ([`Gone`] if the node no longer exists); a non-zero exit is an `Ok` with that status.
    async fn exec(&self, node: &str, cmd: &str) -> anyhow::Result<ExecOutput> {
        let _ = (node, cmd);
        Err(Unsupported("exec").into())
    }

    /// Base URL the harness machine uses to reach `role` on `node` (`http://host:port`).
    fn role_url(&self, node: &str, role: Role) -> anyhow::Result<String> {
        let _ = (node, role);
        Err(Unsupported("role URLs").into())
    }

    /// Starts `role` on `node` again after a kill; does nothing if it is running.
    async fn restart(&self, node: &str, role: Role) -> anyhow::Result<()> {
        let _ = (node, role);
        Err(Unsupported("restart").into())
    }

    /// The address other nodes reach `node` at, when partitions are iptables rules inside the
    /// nodes (netns, VMs). `None` on clusters whose links go through a fault proxy.
    fn node_ip(&self, node: &str) -> Option<String> {
        let _ = node;
        None
    }

    /// The Toxiproxy-compatible API in front of the links between nodes (`http://host:port`),
    /// whose proxies are named by [`crate::links::proxy_name`].
    fn proxy_api(&self) -> Option<String> {
        None
    }

    /// The `Authorization` value (`Bearer <cluster secret>`) that calls to the roles' routes
    /// other than the public ones carry, such as `GET /admin/leader`; `None` where the cluster
    /// has no secret. Marked sensitive, so that `Debug` never shows it.
    fn authorization(&self) -> Option<reqwest::header::HeaderValue> {
        None
    }
}

/// Where nemesis operations are recorded (the run's history).
pub trait Recorder: Send + Sync {
    /// Appends one nemesis operation.
    fn nemesis(&self, op_type: OpType, f: F, value: serde_json::Value, error: Option<String>);
}
