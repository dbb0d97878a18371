//! Cleanup after an interrupted run: Ctrl-C during a pause or during deploy, and SIGKILL of the
//! harness followed by `harness heal`. No process of the run survives, and no fault.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::{harness, heal_expecting, latest, pipeline_bin, processes_mentioning, wait_until};

fn spawn_run(out: &str, time_limit: &str, extra: &[&str]) -> std::process::Child {
    let mut cmd = harness(&[
        "run",
        "--time-limit",
        time_limit,
        "--out",
        out,
        "--seed",
        "7",
    ]);
    cmd.arg("--pipeline-bin")
        .arg(pipeline_bin())
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd.spawn().expect("spawns")
}

pub(crate) fn history_has(out: &Path, needle: &str) -> bool {
    std::fs::read_to_string(out.join("latest/history.jsonl"))
        .map(|h| h.contains(needle))
        .unwrap_or(false)
}

/// Starts a 60 s run under `out` whose pause starts at 1 s and outlasts it, and returns once
/// the pause has started.
fn spawn_paused_run(out: &str) -> std::process::Child {
    let child = spawn_run(out, "60s", &["--fault-at", "1s", "--fault-for", "60s"]);
    assert!(
        wait_until(Duration::from_secs(30), || history_has(
            Path::new(out),
            "\"type\":\"info\",\"f\":\"start\""
        )),
        "the pause never started"
    );
    child
}

/// Proves Ctrl-C during a pause heals it, stops every process, records the heal, and exits 130.
#[test]
fn ctrl_c_heals_and_stops_everything() {
    let out = tempfile::tempdir().expect("tempdir");
    let out_s = out.path().to_str().expect("utf8");
    let mut child = spawn_paused_run(out_s);
    let stopped: Vec<_> = processes_mentioning(out_s)
        .into_iter()
        .filter(|(_, s)| *s == 'T')
        .collect();
    assert_eq!(stopped.len(), 1, "exactly the paused process is stopped");
    ctrl_c_leaves_nothing(&mut child, out_s);
    assert!(history_has(out.path(), "\"f\":\"heal\""), "heal recorded");
    let ledger = nemesis::ledger::HealLedger::in_run_dir(&latest(out.path()));
    assert!(ledger.pending().expect("ledger").is_empty());
}

/// Sends the harness SIGINT (Ctrl-C) and asserts it exits 130 leaving no process of the run
/// under `out_s` behind.
fn ctrl_c_leaves_nothing(child: &mut std::process::Child, out_s: &str) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("sigint");
    let status = child.wait().expect("waits");
    assert_eq!(status.code(), Some(130));
    let left = processes_mentioning(out_s);
    assert!(
        left.is_empty(),
        "processes left behind after Ctrl-C: {left:?}"
    );
}

/// Proves Ctrl-C while the cluster is still being deployed (before any workload) is not lost:
/// the deploy finishes or fails, every process is stopped, and the harness exits 130 having
/// recorded no operation.
#[test]
fn ctrl_c_during_deploy_stops_everything() {
    let out = tempfile::tempdir().expect("tempdir");
    let out_s = out.path().to_str().expect("utf8");
    let mut child = spawn_run(out_s, "60s", &[]);
    assert!(
        wait_until(Duration::from_secs(30), || out
            .path()
            .join("latest/spec.json")
            .is_file()),
        "the run directory never appeared"
    );
    ctrl_c_leaves_nothing(&mut child, out_s);
    assert!(
        !history_has(out.path(), "\"type\":\"invoke\""),
        "no operation ran after the interrupt"
    );
}

/// Proves that after SIGKILL of the harness during a pause no process of the run survives (the
/// unpaused roles see their parent gone; the paused one is in an orphaned process group, which
/// the kernel sends SIGHUP and SIGCONT), and that `harness heal` then settles the ledger and
/// removes the secret directory the killed run left.
#[test]
fn sigkill_then_heal_leaves_nothing() {
    let out = tempfile::tempdir().expect("tempdir");
    let out_s = out.path().to_str().expect("utf8");
    let mut child = spawn_paused_run(out_s);
    assert_eq!(
        processes_mentioning(out_s)
            .iter()
            .filter(|(_, s)| *s == 'T')
            .count(),
        1,
        "the pause stands before the kill"
    );
    child.kill().expect("sigkill");
    child.wait().expect("reaped");
    assert!(
        wait_until(Duration::from_secs(10), || processes_mentioning(out_s)
            .is_empty()),
        "left behind after SIGKILL: {:?}",
        processes_mentioning(out_s)
    );
    let run = latest(out.path());
    let ledger = nemesis::ledger::HealLedger::in_run_dir(&run);
    assert_eq!(
        ledger.pending().expect("ledger").len(),
        1,
        "the ledger still lists the pause"
    );
    heal_expecting(&run, 1);
    assert!(ledger.pending().expect("ledger").is_empty());
    let secret_dir = format!("harness-secret-{}-", child.id());
    let left = std::fs::read_dir(std::env::temp_dir())
        .expect("temp dir")
        .flatten()
        .any(|e| e.file_name().to_string_lossy().starts_with(&secret_dir));
    assert!(!left, "heal left the killed run's secret directory");
    // Healing twice is a no-op.
    heal_expecting(&run, 0);
}
