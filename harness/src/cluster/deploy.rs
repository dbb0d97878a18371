//! Deploying the pipeline over a [`Remote`]: the per-run directory on a node, binary uploads,
//! roles started as daemons (`setsid nohup`, a log file and a pid file each), stopped, logs
//! fetched, and everything removed at the end.
//!
//! Layout on a node, below `<workdir>/<run>/<node>/`:
//! `bin/pipeline`, `bin/faultproxy` (if deployed), `config.json`, `secret` (the cluster secret,
//! mode 0600; never fetched back), `<role>.log`, `<role>.pid`, `data/<role>/`.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;

use crate::remote::{quote, quote_all, run_ok, Remote};

/// Timeout of the small shell commands deploy runs.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a role gets to exit after SIGTERM before SIGKILL, in tenths of a second (the stop
/// script's loop bound).
const STOP_GRACE_TENTHS: u32 = 30;
/// How long the start script waits for the pid file, in tenths of a second.
const PIDFILE_WAIT_TENTHS: u32 = 50;

/// One node's run directory, e.g. `/tmp/harness/20261125T203000.123Z/n1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeDir {
    /// `<workdir>/<run>`: shared by all nodes on one machine (netns), so removed only if empty.
    pub run: String,
    /// `<workdir>/<run>/<node>`.
    pub node: String,
}

impl NodeDir {
    /// The directory of `node` for the run named `run_name` below `workdir`.
    pub fn new(workdir: &str, run_name: &str, node: &str) -> NodeDir {
        let run = format!("{}/{run_name}", workdir.trim_end_matches('/'));
        NodeDir {
            node: format!("{run}/{node}"),
            run,
        }
    }

    /// Where an uploaded binary lives.
    pub fn bin(&self, name: &str) -> String {
        format!("{}/bin/{name}", self.node)
    }

    /// A role's log file.
    pub fn log(&self, role: &str) -> String {
        format!("{}/{role}.log", self.node)
    }

    /// A role's pid file.
    pub fn pidfile(&self, role: &str) -> String {
        format!("{}/{role}.pid", self.node)
    }

    /// The node's pipeline config file (contract §1).
    pub fn config(&self) -> String {
        format!("{}/config.json", self.node)
    }

    /// The node's cluster secret file (mode 0600; removed with the node directory).
    pub fn secret(&self) -> String {
        format!("{}/secret", self.node)
    }

    /// A role's data directory.
    pub fn data(&self, role: &str) -> String {
        format!("{}/data/{role}", self.node)
    }
}

/// Uploads `bins` (name, local file) into the node's `bin/` (creating the run directory).
pub async fn install(
    remote: &dyn Remote,
    dir: &NodeDir,
    bins: &[(String, std::path::PathBuf)],
) -> anyhow::Result<()> {
    for (name, local) in bins {
        let started = std::time::Instant::now();
        remote
            .upload(local, &dir.bin(name), 0o755)
            .await
            .with_context(|| format!("uploading {}", local.display()))?;
        tracing::info!(
            node = remote.node(),
            file = %local.display(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "uploaded"
        );
    }
    Ok(())
}

/// One role to start: its name, the binary in `bin/`, and the arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// The role (names its log, pid file and data directory).
    pub role: String,
    /// The program in the node's `bin/`.
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
}

/// Starts each launch as a daemon running `bin/<program> args`, in its own session, detached
/// from the SSH channel, its output appended to `<role>.log`; returns their pids (from the pid
/// files) in order. One round trip for all of them.
pub async fn start_roles(
    remote: &dyn Remote,
    dir: &NodeDir,
    launches: &[Launch],
) -> anyhow::Result<Vec<u32>> {
    let pidfiles: Vec<String> = launches
        .iter()
        .map(|l| quote(&dir.pidfile(&l.role)))
        .collect();
    let datas: Vec<String> = launches.iter().map(|l| quote(&dir.data(&l.role))).collect();
    let mut script = format!(
        "cd {} && mkdir -p {} && rm -f {} || exit 1; ",
        quote(&dir.node),
        datas.join(" "),
        pidfiles.join(" ")
    );
    for (l, pidfile) in launches.iter().zip(&pidfiles) {
        // `sh -c` writes its own pid and then execs the program, so the pid file names the
        // role's process itself whether or not setsid had to fork.
        let cmd = quote_all(
            &std::iter::once(dir.bin(&l.program))
                .chain(l.args.iter().cloned())
                .collect::<Vec<_>>(),
        );
        script.push_str(&format!(
            "(setsid nohup sh -c 'echo $$ > \"$0\" && exec \"$@\"' {pidfile} {cmd} >> {log} 2>&1 < /dev/null &); ",
            log = quote(&dir.log(&l.role)),
        ));
    }
    let missing: Vec<String> = pidfiles.iter().map(|p| format!("[ ! -s {p} ]")).collect();
    script.push_str(&format!(
        "i=0; while {{ {}; }} && [ $i -lt {PIDFILE_WAIT_TENTHS} ]; do sleep 0.1; i=$((i+1)); done; \
         for f in {}; do cat \"$f\" 2>/dev/null || echo none; done",
        missing.join(" || "),
        pidfiles.join(" ")
    ));
    let roles: Vec<&str> = launches.iter().map(|l| l.role.as_str()).collect();
    let out = run_ok(remote, &script, COMMAND_TIMEOUT)
        .await
        .with_context(|| format!("starting {}", roles.join(", ")))?;
    let text = out.stdout_text();
    let pids: Vec<&str> = text.lines().map(str::trim).collect();
    if pids.len() != launches.len() {
        anyhow::bail!("{}: start printed {text:?}", remote.node());
    }
    roles
        .iter()
        .zip(pids)
        .map(|(role, pid)| {
            pid.parse()
                .with_context(|| format!("{}/{role}: no pid file after start", remote.node()))
        })
        .collect()
}

/// The pid in `role`'s pid file.
pub async fn pid(remote: &dyn Remote, dir: &NodeDir, role: &str) -> anyhow::Result<u32> {
    let out = run_ok(
        remote,
        &format!("cat {}", quote(&dir.pidfile(role))),
        COMMAND_TIMEOUT,
    )
    .await
    .with_context(|| format!("{role} is not running"))?;
    out.stdout_text()
        .trim()
        .parse()
        .with_context(|| format!("{}/{role}: pid file holds no pid", remote.node()))
}

/// True when `role`'s process is alive.
pub async fn alive(remote: &dyn Remote, dir: &NodeDir, role: &str) -> anyhow::Result<bool> {
    let cmd = format!(
        "p=$(cat {} 2>/dev/null) && [ -n \"$p\" ] && kill -0 \"$p\"",
        quote(&dir.pidfile(role))
    );
    Ok(remote.exec(&cmd, COMMAND_TIMEOUT).await?.success())
}

/// Stops `roles` together: SIGCONT (in case one is paused) and SIGTERM to each, SIGKILL to any
/// still alive after a grace period. Roles that are not running are skipped.
pub async fn stop_roles(remote: &dyn Remote, dir: &NodeDir, roles: &[&str]) -> anyhow::Result<()> {
    let pidfiles = quote_all(&roles.iter().map(|r| dir.pidfile(r)).collect::<Vec<_>>());
    let script = format!(
        "pids=''; for f in {pidfiles}; do p=$(cat \"$f\" 2>/dev/null) && [ -n \"$p\" ] && pids=\"$pids $p\"; done; \
         for p in $pids; do kill -s CONT $p 2>/dev/null; kill -s TERM $p 2>/dev/null; done; \
         i=0; alive=$pids; while [ -n \"$alive\" ] && [ $i -lt {STOP_GRACE_TENTHS} ]; do \
           sleep 0.1; i=$((i+1)); left=''; for p in $alive; do kill -0 $p 2>/dev/null && left=\"$left $p\"; done; alive=$left; \
         done; \
         for p in $alive; do kill -s KILL $p 2>/dev/null; echo \"killed $p\"; done; rm -f {pidfiles}"
    );
    let out = run_ok(remote, &script, COMMAND_TIMEOUT)
        .await
        .with_context(|| format!("stopping {}", roles.join(", ")))?;
    if out.stdout_text().contains("killed") {
        tracing::warn!(
            node = remote.node(),
            killed = out.stdout_text().trim(),
            "did not stop after SIGTERM; killed"
        );
    }
    Ok(())
}

/// The last `lines` lines of `role`'s log, for error messages.
pub async fn log_tail(remote: &dyn Remote, dir: &NodeDir, role: &str, lines: usize) -> String {
    let cmd = format!("tail -n {lines} {}", quote(&dir.log(role)));
    match remote.exec(&cmd, COMMAND_TIMEOUT).await {
        Ok(out) => out.stdout_text().trim().replace('\n', " | "),
        Err(e) => format!("(log unreadable: {e})"),
    }
}

/// Downloads every role's log to `<local_node_dir>/<role>.log`.
pub async fn fetch_logs(
    remote: &dyn Remote,
    dir: &NodeDir,
    roles: &[&str],
    local_node_dir: &Path,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(local_node_dir)
        .with_context(|| format!("creating {}", local_node_dir.display()))?;
    let fetches = roles.iter().map(|role| async move {
        let local = local_node_dir.join(format!("{role}.log"));
        remote.download(&dir.log(role), &local).await
    });
    for r in futures::future::join_all(fetches).await {
        r?;
    }
    Ok(())
}

/// Removes the node's run directory, and the run directory above it once it is empty.
pub async fn remove(remote: &dyn Remote, dir: &NodeDir) -> anyhow::Result<()> {
    let cmd = format!(
        "rm -rf {} && {{ rmdir {} 2>/dev/null || true; }}",
        quote(&dir.node),
        quote(&dir.run)
    );
    run_ok(remote, &cmd, COMMAND_TIMEOUT).await.map(|_| ())
}
