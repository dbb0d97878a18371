//! A test cluster for the faults: role processes are real `sleep` processes this test starts,
//! nodes may live in network namespaces the test creates, and links may go through a faultproxy.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

use async_trait::async_trait;
use formats::history::{OpType, F};
use formats::Role;
use nemesis::{Control, ExecOutput, Gone, Recorder, Signal};
use nix::sys::signal::{kill, Signal as NixSignal};
use nix::unistd::Pid;

/// One node of the test cluster.
#[derive(Debug, Clone, Default)]
pub struct TestNode {
    /// Network namespace the node's commands run in, if any.
    pub netns: Option<String>,
    /// Address other nodes reach it at (enables iptables partitions).
    pub ip: Option<String>,
}

/// Processes per (node, role), started on demand as `sleep 60`.
pub struct TestCtl {
    pub nodes: BTreeMap<String, TestNode>,
    pub api: Option<String>,
    /// Base URLs per (node, role), for leader lookups.
    pub urls: BTreeMap<(String, String), String>,
    procs: Mutex<BTreeMap<(String, String), Child>>,
}

impl TestCtl {
    pub fn new(nodes: BTreeMap<String, TestNode>, api: Option<String>) -> TestCtl {
        TestCtl {
            nodes,
            api,
            urls: BTreeMap::new(),
            procs: Mutex::new(BTreeMap::new()),
        }
    }

    /// Starts `role` on `node` (a `sleep` process).
    pub fn spawn(&self, node: &str, role: &str) -> u32 {
        let child = Command::new("sleep")
            .arg("60")
            .stdin(Stdio::null())
            .spawn()
            .expect("sleep starts");
        let pid = child.id();
        let mut procs = self.procs.lock().expect("lock");
        procs.insert((node.into(), role.into()), child);
        pid
    }

    /// Whether the process of (node, role) has exited (reaps it).
    pub fn exited(&self, node: &str, role: &str) -> bool {
        let mut procs = self.procs.lock().expect("lock");
        match procs.get_mut(&(node.to_owned(), role.to_owned())) {
            Some(c) => matches!(c.try_wait(), Ok(Some(_))),
            None => true,
        }
    }
}

impl Drop for TestCtl {
    fn drop(&mut self) {
        if let Ok(mut procs) = self.procs.lock() {
            for c in procs.values_mut() {
                let _ = kill(Pid::from_raw(c.id() as i32), NixSignal::SIGCONT);
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

/// Longest wait for a process to settle on a scheduler state (a loaded machine may take a
/// while to run a just-spawned or just-signalled process).
const STATE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The scheduler state letter of `pid` once it settles on `want` (within [`STATE_WAIT`]), else
/// its last.
pub fn state_becomes(pid: u32, want: char) -> char {
    let deadline = std::time::Instant::now() + STATE_WAIT;
    loop {
        let s = state(pid);
        if s == want || std::time::Instant::now() > deadline {
            return s;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// The scheduler state letter of `pid` (`S`, `T`, `Z`, ...).
pub fn state(pid: u32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit(')')
        .next()
        .and_then(|s| s.trim().chars().next())
        .unwrap_or('?')
}

#[async_trait]
impl Control for TestCtl {
    fn nodes(&self) -> Vec<String> {
        self.nodes.keys().cloned().collect()
    }

    async fn pid(&self, node: &str, role: Role) -> anyhow::Result<u32> {
        let procs = self.procs.lock().expect("lock");
        procs
            .get(&(node.to_owned(), role.as_str().to_owned()))
            .map(Child::id)
            .ok_or_else(|| anyhow::anyhow!("{node}/{role} is not running"))
    }

    async fn signal(&self, _node: &str, pid: u32, signal: Signal) -> anyhow::Result<()> {
        nemesis::signal_local(pid, signal)
    }

    async fn exec(&self, node: &str, cmd: &str) -> anyhow::Result<ExecOutput> {
        let n = self
            .nodes
            .get(node)
            .ok_or_else(|| Gone(format!("node {node}")))?;
        let mut c = match &n.netns {
            Some(ns) => {
                if !std::path::Path::new("/var/run/netns").join(ns).exists() {
                    return Err(Gone(format!("namespace {ns}")).into());
                }
                let mut c = tokio::process::Command::new("ip");
                c.args(["netns", "exec", ns, "sh", "-c", cmd]);
                c
            }
            None => {
                let mut c = tokio::process::Command::new("sh");
                c.args(["-c", cmd]);
                c
            }
        };
        let out = c.output().await?;
        Ok(ExecOutput {
            code: out.status.code(),
            stdout: out.stdout,
            stderr: out.stderr,
        })
    }

    async fn restart(&self, node: &str, role: Role) -> anyhow::Result<()> {
        if !self.exited(node, role.as_str()) {
            return Ok(());
        }
        self.spawn(node, role.as_str());
        Ok(())
    }

    fn role_url(&self, node: &str, role: Role) -> anyhow::Result<String> {
        self.urls
            .get(&(node.to_owned(), role.as_str().to_owned()))
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("no url for {node}/{role}"))
    }

    fn node_ip(&self, node: &str) -> Option<String> {
        self.nodes.get(node).and_then(|n| n.ip.clone())
    }

    fn proxy_api(&self) -> Option<String> {
        self.api.clone()
    }
}

/// Records nemesis operations in memory.
#[derive(Default)]
pub struct Ops(pub Mutex<Vec<RecordedOp>>);

/// (type, f, value, error) of one recorded nemesis operation.
pub type RecordedOp = (OpType, String, serde_json::Value, Option<String>);

impl Recorder for Ops {
    fn nemesis(&self, op_type: OpType, f: F, value: serde_json::Value, error: Option<String>) {
        self.0
            .lock()
            .expect("lock")
            .push((op_type, f.as_str().to_owned(), value, error));
    }
}

impl Ops {
    /// The recorded (type, f, fault kind, target) of each op.
    pub fn summary(&self) -> Vec<(OpType, String, String, String)> {
        self.0
            .lock()
            .expect("lock")
            .iter()
            .map(|(t, f, v, _)| {
                (
                    *t,
                    f.clone(),
                    v["fault"].as_str().unwrap_or_default().to_owned(),
                    v["target"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }
}
