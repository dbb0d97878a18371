//! What the nemesis needs from the cluster and the history, as traits the harness implements.

use async_trait::async_trait;
use checker::history::OpType;

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

/// The cluster as the nemesis sees it.
#[async_trait]
pub trait Control: Send + Sync {
    /// Node names, in order (`n1`, `n2`, ...).
    fn nodes(&self) -> Vec<String>;
    /// The pid of `role` on `node` right now.
    async fn pid(&self, node: &str, role: &str) -> anyhow::Result<u32>;
    /// Sends `signal` to `pid` on `node`. Sending to a process that no longer exists is not an
    /// error for [`Signal::Cont`] (there is nothing left to resume).
    async fn signal(&self, node: &str, pid: u32, signal: Signal) -> anyhow::Result<()>;
}

/// Where nemesis operations are recorded (the run's history).
pub trait Recorder: Send + Sync {
    /// Appends one nemesis operation.
    fn nemesis(&self, op_type: OpType, f: &str, value: serde_json::Value, error: Option<String>);
}
