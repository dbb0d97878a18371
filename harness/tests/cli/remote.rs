//! The `Remote` implementations against real shells and a real sshd, and the SSH clusters' input
//! errors through the binary.

use std::time::{Duration, Instant};

use harness::remote::local::LocalRemote;
use harness::remote::ssh::{HostKeyPolicy, SshRemote, SshTarget};
use harness::remote::{Remote, RemoteError};

use super::sshd::{pubkey, TestSshd};
use super::{harness, text};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Exercises one remote: exit code, stdout and stderr kept apart, a timeout is an error naming
/// the node, and a binary file survives an upload/download round trip with its mode.
async fn exercise(r: &dyn Remote, scratch: &std::path::Path) {
    let out = r
        .exec("echo out; echo err >&2; exit 7", Duration::from_secs(10))
        .await
        .expect("exec");
    assert_eq!(out.code, Some(7));
    assert_eq!(out.stdout_text(), "out\n");
    assert_eq!(out.stderr_text(), "err\n");
    let started = Instant::now();
    let e = r
        .exec("sleep 5", Duration::from_millis(300))
        .await
        .expect_err("times out");
    assert!(matches!(e, RemoteError::Timeout { .. }), "{e}");
    assert!(e.to_string().contains(r.node()), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the timeout bit"
    );

    let payload: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let local = scratch.join("payload.bin");
    std::fs::write(&local, &payload).expect("write");
    let remote_path = scratch.join("uploaded.bin");
    let remote_path = remote_path.to_str().expect("utf8");
    r.upload(&local, remote_path, 0o750).await.expect("upload");
    let mode = r
        .exec(
            &format!("stat -c %a {remote_path}"),
            Duration::from_secs(10),
        )
        .await
        .expect("stat");
    assert_eq!(mode.stdout_text().trim(), "750");
    let back = scratch.join("back.bin");
    r.download(remote_path, &back).await.expect("download");
    assert!(
        std::fs::read(&back).expect("read") == payload,
        "round trip differs"
    );
    let e = r
        .download(&format!("{remote_path}.missing"), &back)
        .await
        .expect_err("missing file");
    assert!(e.to_string().contains(".missing"), "{e}");
}

/// Proves the local remote runs real commands with exit codes, separate streams, timeouts and
/// file transfers.
#[test]
fn local_remote_exec_and_transfers() {
    let dir = tempfile::tempdir().expect("tempdir");
    rt().block_on(exercise(&LocalRemote::new("here"), dir.path()));
}

/// Proves the SSH remote (russh) against a real OpenSSH sshd: the same exec and transfer
/// behaviour as the local remote, with the host key checked against known_hosts; a wrong
/// recorded key and an unrecorded key are both refused with an error naming the node, and the
/// insecure opt-out connects anyway.
#[test]
fn ssh_remote_against_real_sshd() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(sshd) = TestSshd::start("ssh_remote_against_real_sshd", dir.path()) else {
        return;
    };
    let target = SshTarget {
        node: "n1".into(),
        host: "127.0.0.1".into(),
        port: sshd.port,
        user: sshd.user.clone(),
        key: sshd.client_key.clone(),
        host_keys: HostKeyPolicy::KnownHosts(sshd.known_hosts.clone()),
    };
    rt().block_on(async {
        let r = SshRemote::connect(&target).await.expect("connects");
        exercise(&r, dir.path()).await;
        let started = Instant::now();
        for _ in 0..20 {
            r.exec("true", Duration::from_secs(5)).await.expect("exec");
        }
        eprintln!("ssh exec round trip: {:?}", started.elapsed() / 20);

        // A known_hosts that records another key for this host:port.
        let wrong = dir.path().join("wrong_known_hosts");
        std::fs::write(
            &wrong,
            format!(
                "[127.0.0.1]:{} {}\n",
                sshd.port,
                pubkey(&dir.path().join("client_key.pub"))
            ),
        )
        .expect("write");
        let mismatch = SshTarget {
            host_keys: HostKeyPolicy::KnownHosts(wrong.clone()),
            ..target.clone()
        };
        let e = SshRemote::connect(&mismatch).await.expect_err("refused");
        assert!(
            matches!(e, RemoteError::HostKeyMismatch { line: 1, .. }),
            "{e}"
        );
        let msg = e.to_string();
        assert!(
            msg.contains("n1") && msg.contains("host key does not match"),
            "{msg}"
        );

        let empty = dir.path().join("empty_known_hosts");
        std::fs::write(&empty, "").expect("write");
        let unknown = SshTarget {
            host_keys: HostKeyPolicy::KnownHosts(empty),
            ..target.clone()
        };
        let e = SshRemote::connect(&unknown).await.expect_err("refused");
        assert!(matches!(e, RemoteError::HostKeyUnknown { .. }), "{e}");
        assert!(e.to_string().contains("SHA256:"), "{e}");

        let insecure = SshTarget {
            host_keys: HostKeyPolicy::InsecureIgnore,
            ..mismatch
        };
        let r = SshRemote::connect(&insecure)
            .await
            .expect("insecure connects");
        assert!(r
            .exec("true", Duration::from_secs(5))
            .await
            .expect("exec")
            .success());
    });
}

/// Proves `harness run --cluster ssh` refuses a node whose host key differs from known_hosts
/// with one clear line naming the node, exit 255, and creates no run directory.
#[test]
fn run_refuses_wrong_host_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(sshd) = TestSshd::start("run_refuses_wrong_host_key", dir.path()) else {
        return;
    };
    let wrong = dir.path().join("wrong_known_hosts");
    std::fs::write(
        &wrong,
        format!(
            "[127.0.0.1]:{} {}\n",
            sshd.port,
            pubkey(&dir.path().join("client_key.pub"))
        ),
    )
    .expect("write");
    let nodes = sshd.nodes_file("nodes.toml", &wrong);
    let out = dir.path().join("reports");
    let o = harness(&["run", "--cluster", "ssh", "--time-limit", "2s"])
        .arg("--nodes-file")
        .arg(&nodes)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(255), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {err}");
    assert!(
        lines[0].starts_with("harness: n1 (127.0.0.1:")
            && lines[0].contains("host key does not match"),
        "{err}"
    );
    assert!(!out.exists(), "no run directory for a refused node");
}

/// A throwaway ed25519 key made for these tests; it opens nothing.
const TEST_KEY: &str = "-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
QyNTUxOQAAACDbi1tfOk//SGYoj+Yw3uY39ZTUHiUmITwazYY6mVA7kAAAAJiShOvhkoTr
4QAAAAtzc2gtZWQyNTUxOQAAACDbi1tfOk//SGYoj+Yw3uY39ZTUHiUmITwazYY6mVA7kA
AAAED1yZJ2z3O5nvRwOXU7LaBSt9ol8gO+Pax8ecBEj26lPtuLW186T/9IZiiP5jDe5jf1
lNQeJSYhPBrNhjqZUDuQAAAAEnRocm93YXdheS10ZXN0LWtleQECAw==
-----END OPENSSH PRIVATE KEY-----
";

/// Proves input mistakes of SSH clusters are one clear line and exit 254 (a nodes file with a
/// missing field, flags that do not go together) or 255 (an unreachable node), never a panic,
/// and that none of them writes a run directory.
#[test]
fn ssh_cluster_input_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    std::fs::write(d.join("key"), TEST_KEY).expect("w");
    std::fs::write(d.join("kh"), "").expect("w");
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let node = |extra: &str| {
        format!("known_hosts = \"kh\"\n[[node]]\nname = \"n1\"\nhost = \"127.0.0.1\"\n{extra}user = \"root\"\nkey = \"key\"\n")
    };
    std::fs::write(d.join("missing.toml"), node("")).expect("w");
    std::fs::write(
        d.join("closed.toml"),
        node(&format!("port = {closed_port}\n")),
    )
    .expect("w");
    let out = d.join("reports");
    let out_s = out.to_str().expect("utf8");
    let file = |name: &str| d.join(name).to_str().expect("utf8").to_owned();
    let cases: Vec<(Vec<String>, i32, &str)> = vec![
        (
            vec![
                "run".into(),
                "--cluster".into(),
                "ssh".into(),
                "--nodes-file".into(),
                file("missing.toml"),
            ],
            254,
            "node 1 ('n1'): missing field 'port'",
        ),
        (
            vec![
                "run".into(),
                "--cluster".into(),
                "ssh".into(),
                "--nodes-file".into(),
                file("nope.toml"),
            ],
            254,
            "nope.toml",
        ),
        (
            vec![
                "run".into(),
                "--cluster".into(),
                "ssh".into(),
                "--nodes-file".into(),
                file("closed.toml"),
            ],
            255,
            "n1 (127.0.0.1:",
        ),
        (
            vec!["run".into(), "--cluster".into(), "ssh".into()],
            254,
            "--nodes-file",
        ),
        (
            vec!["run".into(), "--nodes-file".into(), file("closed.toml")],
            254,
            "only to --cluster ssh",
        ),
        (
            vec!["run".into(), "--cluster".into(), "vms".into()],
            254,
            "vms",
        ),
        (vec!["cluster".into(), "sideways".into()], 254, "sideways"),
        (
            vec!["nodes-from-ssh-config".into(), file("kh")],
            254,
            "no Host blocks",
        ),
    ];
    for (args, code, needle) in cases {
        let o = harness(&[])
            .args(&args)
            .args(["--out", out_s].iter().filter(|_| args[0] == "run"))
            .output()
            .expect("runs");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(code), "{args:?}: {}", text(&o));
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        if args[0] != "cluster" && !args.contains(&"vms".to_owned()) {
            assert_eq!(err.trim().lines().count(), 1, "{args:?}: one line: {err}");
        }
    }
    assert!(!out.exists(), "nothing written");
}

/// Proves `harness heal` on a run made on an SSH cluster resumes the paused process over SSH
/// (using the nodes file that the run's spec.json names) rather than signalling locally: a
/// stopped process listed in the ledger runs again afterwards and the ledger is settled.
#[test]
fn heal_over_ssh_resumes_a_paused_process() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(sshd) = TestSshd::start("heal_over_ssh_resumes_a_paused_process", dir.path()) else {
        return;
    };
    let nodes = sshd.nodes_file("nodes.toml", &sshd.known_hosts);
    let run = dir.path().join("run");
    std::fs::create_dir(&run).expect("run dir");
    std::fs::write(
        run.join("spec.json"),
        serde_json::json!({
            "cluster": "ssh",
            "cluster_spec": {"kind": "ssh", "file": {"path": nodes}},
            "insecure_ignore_host_keys": false,
        })
        .to_string(),
    )
    .expect("spec");
    let mut victim = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .expect("sleep");
    let pid = victim.id();
    let state = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| s.rsplit(')').next().and_then(|r| r.trim().chars().next()))
    };
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGSTOP,
    )
    .expect("stop");
    assert!(super::wait_until(Duration::from_secs(5), || state() == Some('T')));
    let ledger = nemesis::ledger::HealLedger::in_run_dir(&run);
    let fault = nemesis::ActiveFault::Pause {
        node: "n1".into(),
        role: formats::Role::Payment,
        pid,
    };
    ledger.started("f1", &fault).expect("ledger");
    let o = harness(&["heal"]).arg(&run).output().expect("heal runs");
    let resumed = super::wait_until(Duration::from_secs(5), || state() == Some('S'));
    let _ = victim.kill();
    let _ = victim.wait();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("healed 1"),
        "{}",
        text(&o)
    );
    assert!(resumed, "the paused process was not resumed");
    assert!(ledger.pending().expect("ledger").is_empty());
    let auth_log = std::fs::read_to_string(sshd.dir.join("sshd.log")).unwrap_or_default();
    assert!(
        auth_log.contains("Accepted publickey"),
        "heal went over ssh: {auth_log}"
    );
}
