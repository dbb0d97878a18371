//! The netns cluster end to end (root): `harness cluster up` makes five namespaces with their
//! own sshd, `harness run --cluster netns` deploys the pipeline over SSH (russh) and completes,
//! and `harness cluster down` leaves no namespace, link or iptables rule behind. A run killed
//! with SIGKILL while a partition and a pause stand is healed by `harness heal`.

use std::path::Path;
use std::process::Command;

use super::sshd::{is_root, skip, sshd_path};
use super::{assert_complete_run, harness, latest, pipeline_bin, text};

const STATE_DIR: &str = "/run/harness-netns";

/// Runs `harness cluster down` when dropped, so a failing test leaves nothing behind.
struct Down;

impl Drop for Down {
    fn drop(&mut self) {
        let _ = harness(&["cluster", "down"]).output();
    }
}

fn stdout_of(program: &str, args: &[&str]) -> String {
    let o = Command::new(program).args(args).output().expect("runs");
    assert!(o.status.success(), "{program} {args:?} failed");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn our_namespaces() -> Vec<String> {
    stdout_of("ip", &["netns", "list"])
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with("hns-"))
        .map(str::to_owned)
        .collect()
}

fn our_links() -> Vec<String> {
    std::fs::read_dir("/sys/class/net")
        .expect("sysfs")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("hns-"))
        .collect()
}

fn our_rules() -> Vec<String> {
    stdout_of("iptables", &["-w", "-S"])
        .lines()
        .filter(|l| l.contains("harness-netns"))
        .map(str::to_owned)
        .collect()
}

/// Live sshd processes (listeners and sessions) started from the cluster's state directory.
fn our_sshds() -> usize {
    super::processes_mentioning(&format!("{STATE_DIR}/n"))
        .into_iter()
        .filter(|(pid, _)| {
            std::fs::read_link(format!("/proc/{pid}/exe"))
                .is_ok_and(|exe| exe.to_string_lossy().contains("sshd"))
        })
        .count()
}

/// Proves the netns cluster end to end as root: `cluster up` makes exactly five namespaces on
/// the bridge, each with a live sshd; a 10 s `run --cluster netns` deploys the pipeline over SSH
/// into them (each role logs that it listens on its node's own address) with the cluster
/// secret uploaded beside each node's config, completes with a valid verdict and a complete
/// run directory holding neither that secret nor any private key (the nodes' SSH keys stay in
/// the state directory), and removes what it uploaded; `cluster down` then
/// leaves no namespace, link, iptables rule, sshd or state directory, and a second `down`
/// succeeds doing nothing. In between, a second run is killed with SIGKILL while a partition
/// and a pause stand, and `harness heal` removes the rules and resumes the process.
#[test]
fn netns_cluster_run_and_teardown() {
    let test = "netns_cluster_run_and_teardown";
    if !is_root() {
        skip(test, "needs root for network namespaces");
        return;
    }
    if sshd_path().is_none() {
        skip(
            test,
            "sshd is not installed (apt-get install openssh-server)",
        );
        return;
    }
    let bin = pipeline_bin();
    let _down = Down;
    let o = harness(&["cluster", "down"]).output().expect("runs");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    let o = harness(&["cluster", "up", "--nodes", "5"])
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        our_namespaces().len(),
        5,
        "namespaces: {:?}",
        our_namespaces()
    );
    for i in 1..=5 {
        let pid = std::fs::read_to_string(format!("{STATE_DIR}/n{i}/sshd.pid")).expect("pid file");
        let pid = pid.trim();
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).expect("sshd is alive");
        assert!(exe.to_string_lossy().contains("sshd"), "{exe:?}");
        assert_eq!(
            stdout_of("ip", &["netns", "identify", pid]).trim(),
            format!("hns-n{i}"),
            "n{i}'s sshd runs in its namespace"
        );
    }
    assert!(our_links().contains(&"hns-br0".to_owned()));
    assert_eq!(our_rules().len(), 1, "{:?}", our_rules());
    let o = harness(&["cluster", "status"]).output().expect("runs");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    let out = tempfile::tempdir().expect("tempdir");
    let secret = format!("netns-secret-{}", "a7".repeat(24));
    let secret_file = super::secret::secret_file(out.path(), "netns.secret", &secret, 0o600);
    let o = harness(&[
        "run",
        "--cluster",
        "netns",
        "--time-limit",
        "10s",
        "--seed",
        "9",
        // This test is about the namespaces; the alerts' agreement with a real Prometheus has
        // tests of its own (cli/alerts.rs). Here, under load, the two once disagreed on one
        // alert for over 1 s and the verdict was unknown.
        "--prometheus",
        "off",
    ])
    .arg("--out")
    .arg(out.path())
    .arg("--pipeline-bin")
    .arg(&bin)
    .arg("--cluster-secret-file")
    .arg(&secret_file)
    .output()
    .expect("runs");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let run = latest(out.path());
    super::secret::assert_no_secret_or_key(&run, &secret, &secret_file);
    let nodes = ["n1", "n2", "n3", "n4", "n5"];
    assert_complete_run(&run, &nodes);
    for (i, node) in nodes.iter().enumerate() {
        for role in harness::cluster::pipeline::ROLES {
            let log =
                std::fs::read_to_string(run.join("nodes").join(node).join(format!("{role}.log")))
                    .expect("log fetched over ssh");
            assert!(
                log.contains(&format!("\"addr\":\"10.199.0.{}:", 11 + i)),
                "{node}/{role} did not listen on its namespace's address"
            );
        }
    }
    let spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("spec.json")).expect("spec")).expect("json");
    assert_eq!(spec["cluster"], "netns");
    assert_eq!(spec["netns_state_dir"], STATE_DIR);
    assert!(spec["rerun"]
        .as_str()
        .expect("rerun")
        .contains("--cluster netns --nodes 5"));
    let remote_runs = std::fs::read_dir("/tmp/harness")
        .map(|rd| {
            rd.flatten()
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .contains(run.file_name().and_then(|n| n.to_str()).unwrap_or("?"))
                })
                .count()
        })
        .unwrap_or(0);
    assert_eq!(remote_runs, 0, "the run's remote directories were removed");
    assert!(
        super::processes_mentioning("/tmp/harness/").is_empty(),
        "pipeline processes left in the namespaces"
    );

    sigkill_during_partition_and_pause_then_heal(&bin);

    let o = harness(&["cluster", "down"]).output().expect("runs");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(our_namespaces().is_empty(), "{:?}", our_namespaces());
    assert!(our_links().is_empty(), "{:?}", our_links());
    assert!(our_rules().is_empty(), "{:?}", our_rules());
    assert_eq!(our_sshds(), 0, "sshd left running");
    assert!(!Path::new(STATE_DIR).exists(), "state directory left");
    let o = harness(&["cluster", "down"]).output().expect("runs");
    assert_eq!(o.status.code(), Some(0), "second down: {}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("removed 0 namespaces"));
    let o = harness(&["cluster", "status"]).output().expect("runs");
    assert_eq!(o.status.code(), Some(1), "status after down: {}", text(&o));
}

/// Rules of the nemesis chain (`SAGAJ`) in any of the cluster's namespaces.
fn chain_rules() -> Vec<String> {
    our_namespaces()
        .iter()
        .flat_map(|ns| {
            stdout_of("ip", &["netns", "exec", ns, "iptables", "-w", "-S"])
                .lines()
                .filter(|l| l.contains(nemesis::iptables::CHAIN))
                .map(|l| format!("{ns}: {l}"))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Pipeline processes in the namespaces that are stopped (state T).
fn stopped_roles() -> Vec<u32> {
    super::processes_mentioning("/tmp/harness/")
        .into_iter()
        .filter(|(_, s)| *s == 'T')
        .map(|(pid, _)| pid)
        .collect()
}

/// SIGKILLs a netns run while a partition (iptables rules in n2's namespace) and a pause (SIGSTOP
/// of payment on n3) both stand, then runs `harness heal` on its run directory and asserts that
/// neither fault outlived it.
fn sigkill_during_partition_and_pause_then_heal(bin: &Path) {
    let out = tempfile::tempdir().expect("tempdir");
    let mut child = harness(&[
        "run",
        "--cluster",
        "netns",
        "--time-limit",
        "120s",
        "--seed",
        "9",
        "--fault",
        "kind=partition,shape=isolate-one,node=n2,at=1s,for=100s",
        "--fault",
        "kind=pause,role=payment,node=n3,at=1s,for=100s",
    ])
    .arg("--out")
    .arg(out.path())
    .arg("--pipeline-bin")
    .arg(bin)
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null())
    .spawn()
    .expect("spawns");
    let history = out.path().join("latest/history.jsonl");
    let started = || {
        std::fs::read_to_string(&history)
            .map(|h| {
                h.lines()
                    .filter(|l| {
                        l.contains("\"process\":\"nemesis\"")
                            && l.contains("\"type\":\"info\",\"f\":\"start\"")
                    })
                    .count()
            })
            .unwrap_or(0)
    };
    let both = super::wait_until(std::time::Duration::from_secs(90), || started() >= 2);
    if !both {
        let _ = child.kill();
        let _ = child.wait();
        panic!("both faults never started");
    }
    assert!(!chain_rules().is_empty(), "the partition's rules stand");
    assert_eq!(stopped_roles().len(), 1, "the pause stands");
    child.kill().expect("sigkill");
    child.wait().expect("reaped");
    assert!(
        !chain_rules().is_empty(),
        "SIGKILL left the partition (as it must)"
    );
    let run = latest(out.path());
    super::heal_expecting(&run, 2);
    assert!(chain_rules().is_empty(), "{:?}", chain_rules());
    assert!(stopped_roles().is_empty(), "{:?}", stopped_roles());
}
