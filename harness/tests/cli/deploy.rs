//! Deploy over a `Remote` without root: `RemoteCluster` on `LocalRemote` nodes, each node on its
//! own loopback address (127.77.0.x), so the fixed role ports do not collide.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use harness::cluster::remote::{RemoteCluster, RemoteNode, RemoteOptions};
use harness::cluster::Cluster as _;
use harness::remote::local::LocalRemote;
use nemesis::{Control, Signal};

use super::pipeline_bin;

fn nodes() -> Vec<RemoteNode> {
    (1..=2)
        .map(|i| RemoteNode {
            name: format!("n{i}"),
            addr: format!("127.77.0.{i}"),
            remote: Arc::new(LocalRemote::new(&format!("n{i}"))),
        })
        .collect()
}

/// The secret of the deploy test (known, so that it can be looked for).
const SECRET: &str = "deploy-test-secret-0123456789abcdef0123456789";

fn state(pid: u32) -> Option<char> {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit(')').next().and_then(|r| r.trim().chars().next()))
        .filter(|c| *c != 'Z')
}

/// Proves the deploy path: every role starts as a daemon in the run's node directory and
/// answers /health on its node's address; the cluster secret is uploaded beside the config
/// (mode 0600), admin routes need it, and it is neither in the local run directory nor left on
/// the node after teardown; the pid file names the live process, which
/// `signal` stops and resumes; `exec` runs commands on the node; `restart_role` replaces the
/// process and waits for its health; `stop` ends every role, fetches the logs (holding both
/// lives of the restarted role), copies the nodes file's VM records (files, not folders) into
/// `vms/` and removes the node directories, and is idempotent. A binary that exits at once
/// fails the deploy with its log tail and leaves nothing behind.
#[test]
fn deploy_signal_restart_and_teardown() {
    let dir = tempfile::tempdir().expect("tempdir");
    let work = dir.path().join("work");
    let run_dir = dir.path().join("run");
    let vms = dir.path().join("vms");
    std::fs::create_dir_all(vms.join("not-copied")).expect("mkdir");
    std::fs::write(vms.join("n1.console.log"), "SAGAJ-READY uptime_s=61.5\n").expect("write");
    let opts = RemoteOptions {
        kind: formats::spec::ClusterKind::Ssh,
        workdir: work.to_str().expect("utf8").to_owned(),
        run_name: "t1".into(),
        run_dir: run_dir.clone(),
        pipeline_bin: pipeline_bin(),
        faultproxy_bin: None,
        role_flags: BTreeMap::new(),
        settings: harness::cluster::pipeline::default_settings(),
        secret: harness::cluster::secret::ClusterSecret::from_text(SECRET).expect("secret"),
        health_timeout: harness::cluster::remote::HEALTH_TIMEOUT,
        vms_dir: Some(vms.clone()),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let cluster = RemoteCluster::deploy(nodes(), &opts)
            .await
            .expect("deploys");
        let http = reqwest::Client::new();
        let health = format!(
            "{}/health",
            cluster.role_url("n2", formats::Role::Payment).expect("url")
        );
        assert!(health.starts_with("http://127.77.0.2:"), "{health}");
        assert!(http
            .get(&health)
            .send()
            .await
            .expect("health")
            .status()
            .is_success());
        let on_node = work.join("t1/n2/secret");
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&on_node)
                .expect("secret on the node")
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            std::fs::read_to_string(&on_node).expect("read").trim(),
            SECRET
        );
        let ledger = format!(
            "{}/admin/ledger",
            cluster.role_url("n2", formats::Role::Payment).expect("url")
        );
        let status = |req: reqwest::RequestBuilder| async move {
            req.send().await.expect("answer").status().as_u16()
        };
        assert_eq!(status(http.get(&ledger)).await, 401);
        assert_eq!(status(http.get(&ledger).bearer_auth(SECRET)).await, 200);

        let pid = cluster
            .pid("n1", formats::Role::Payment)
            .await
            .expect("pid");
        assert_eq!(state(pid).map(|c| c == 'T'), Some(false), "running");
        cluster.signal("n1", pid, Signal::Stop).await.expect("stop");
        assert!(super::wait_until(Duration::from_secs(5), || state(pid) == Some('T')));
        cluster.signal("n1", pid, Signal::Cont).await.expect("cont");
        assert!(super::wait_until(Duration::from_secs(5), || state(pid) != Some('T')));

        let out = cluster
            .exec("n1", "echo hi; pwd", Duration::from_secs(5))
            .await
            .expect("exec");
        assert_eq!(out.stdout_text().lines().next(), Some("hi"));

        let new_pid = cluster
            .restart_role("n1", formats::Role::Payment)
            .await
            .expect("restart");
        assert_ne!(new_pid, pid);
        assert_eq!(state(pid), None, "the old process is gone");
        assert_eq!(
            cluster
                .pid("n1", formats::Role::Payment)
                .await
                .expect("pid"),
            new_pid
        );
        let url = format!(
            "{}/health",
            cluster.role_url("n1", formats::Role::Payment).expect("url")
        );
        assert!(http
            .get(&url)
            .send()
            .await
            .expect("health")
            .status()
            .is_success());

        cluster.stop().await.expect("stops");
        assert_eq!(state(new_pid), None, "stopped");
        let gone = cluster
            .signal("n1", new_pid, Signal::Cont)
            .await
            .expect_err("the process is gone");
        assert!(nemesis::control::is_gone(&gone), "{gone:#}");
        let log = std::fs::read_to_string(run_dir.join("nodes/n1/payment.log")).expect("log");
        assert_eq!(
            log.matches("\"listening\"").count(),
            2,
            "both lives logged: {log}"
        );
        assert!(run_dir.join("nodes/n2/order.log").is_file());
        assert!(!work.join("t1").exists(), "node directories removed");
        let leaked = super::files_containing(&run_dir, SECRET.as_bytes());
        assert!(leaked.is_empty(), "the secret is in {leaked:?}");
        assert_eq!(
            std::fs::read_to_string(run_dir.join("vms/n1.console.log")).expect("VM record"),
            "SAGAJ-READY uptime_s=61.5\n"
        );
        assert!(!run_dir.join("vms/not-copied").exists(), "files only");
        cluster.stop().await.expect("stop is idempotent");

        let broken = RemoteOptions {
            pipeline_bin: "/bin/false".into(),
            run_name: "t2".into(),
            ..opts.clone()
        };
        let e = RemoteCluster::deploy(nodes(), &broken)
            .await
            .err()
            .expect("a binary that exits fails the deploy");
        let msg = format!("{e:#}");
        assert!(msg.contains("exited during start"), "{msg}");
        assert!(!work.join("t2").exists(), "a failed deploy leaves nothing");
    });
}
