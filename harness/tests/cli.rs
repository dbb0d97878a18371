//! End-to-end tests of the `harness` binary on a local cluster: a run from start to verdict,
//! `analyze` on hand-made runs, and bad
//! arguments. Submodules: `interrupt` (cleanup after Ctrl-C and after SIGKILL + `harness heal`), `serve` (browsing reports over HTTP), `faults` (link proxies and fault schedules), `scenarios` (named
//! scenarios with their protection on and off), `suite` (the suite and nightly job), `deploy` (deploy over
//! local remotes), `remote` (local and SSH remotes against a real sshd, SSH cluster input
//! errors), `netns` (the namespace cluster, root only), `stock` (the stock workload and the
//! inventory's linearizability check, both modes) `alerts` (the alerting rules in runs: the
//! checker's evaluation and the run's own Prometheus) and `endurance` (the long runs: kills only
//! for 150 s, and the 3-minute chaos run with kills).

#[path = "cli/alerts.rs"]
mod alerts;
#[path = "cli/deploy.rs"]
mod deploy;
#[path = "cli/interrupt.rs"]
mod interrupt;
#[path = "cli/netns.rs"]
mod netns;
#[path = "cli/remote.rs"]
mod remote;
#[path = "cli/secret.rs"]
mod secret;
#[path = "cli/serve.rs"]
mod serve;
#[path = "cli/sshd.rs"]
mod sshd;
#[path = "cli/stock.rs"]
mod stock;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use formats::final_state::OrderStatus;
use formats::history::values::{OrderRead, Placed};
use formats::history::{Op, OpType, Process, F};

/// `harness lincheck` on hand-made files: exit codes, output, errors.
mod lincheck;

fn harness_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_harness"))
}

/// The `pipeline` binary next to `harness`, built on demand when a lone `cargo test -p harness`
/// did not build it.
fn pipeline_bin() -> PathBuf {
    let bin = harness_bin().with_file_name("pipeline");
    if !bin.is_file() {
        let release = bin.to_string_lossy().contains("/release/");
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args(["build", "-p", "sut", "--bin", "pipeline"]);
        if release {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("cargo build runs");
        assert!(status.success(), "building pipeline failed");
    }
    bin
}

/// The `faultproxy` binary next to `harness`, built on demand like `pipeline`.
fn faultproxy_bin() -> PathBuf {
    let bin = harness_bin().with_file_name("faultproxy");
    if !bin.is_file() {
        let release = bin.to_string_lossy().contains("/release/");
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args(["build", "-p", "faultproxy", "--bin", "faultproxy"]);
        if release {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("cargo build runs");
        assert!(status.success(), "building faultproxy failed");
    }
    bin
}

#[path = "cli/endurance.rs"]
mod endurance;
#[path = "cli/faults.rs"]
mod faults;
#[path = "cli/quiet.rs"]
mod quiet;
#[path = "cli/scenarios.rs"]
mod scenarios;
#[path = "cli/suite.rs"]
mod suite;

fn harness(args: &[&str]) -> Command {
    let mut cmd = Command::new(harness_bin());
    cmd.args(args).env("HARNESS_LOG", "warn");
    cmd
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Pids of processes whose command line mentions `needle`, with their state letter.
fn processes_mentioning(needle: &str) -> Vec<(u32, char)> {
    let mut found = Vec::new();
    let me = std::process::id();
    for entry in std::fs::read_dir("/proc").expect("proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if !String::from_utf8_lossy(&cmdline).contains(needle) {
            continue;
        }
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let state = stat
            .rsplit(')')
            .next()
            .and_then(|s| s.trim().chars().next())
            .unwrap_or('?');
        if state != 'Z' {
            found.push((pid, state));
        }
    }
    found
}

/// Every file below `dir` whose bytes contain `needle` (symlinks not followed).
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).expect("readable dir").flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let path = entry.path();
            if kind.is_dir() {
                todo.push(path);
            } else if kind.is_file() {
                let bytes = std::fs::read(&path).unwrap_or_default();
                if bytes.windows(needle.len()).any(|w| w == needle) {
                    found.push(path);
                }
            }
        }
    }
    found
}

fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    cond()
}

fn latest(out: &Path) -> PathBuf {
    std::fs::canonicalize(out.join("latest")).expect("latest link resolves")
}

/// Ports the run's roles listened on, read from their logs.
fn ports_in_logs(run: &Path) -> Vec<u16> {
    let mut ports = Vec::new();
    for node in std::fs::read_dir(run.join("nodes"))
        .expect("nodes")
        .flatten()
    {
        for log in std::fs::read_dir(node.path()).expect("node dir").flatten() {
            if log.path().extension().is_some_and(|e| e == "log") {
                let text = std::fs::read_to_string(log.path()).unwrap_or_default();
                for line in text.lines().filter(|l| l.contains("\"listening\"")) {
                    let v: serde_json::Value = serde_json::from_str(line).expect("json log line");
                    let addr = v["fields"]["addr"].as_str().expect("addr field");
                    ports.push(
                        addr.rsplit(':')
                            .next()
                            .unwrap_or("0")
                            .parse()
                            .expect("port"),
                    );
                }
            }
        }
    }
    ports
}

/// Checks what every completed run directory must hold, whatever the cluster: the files, a
/// history that parses with every client invoke answered by one completion of the same `f` from
/// the same process before that process invokes again, acknowledged orders polled as
/// `read-order`, a final state read without errors that holds every acknowledged order (none
/// missing, no tolerance), per-role logs, and `metrics.csv` rows (as
/// contract section 5 shapes them) for every role of every node. Returns the history's ops.
fn assert_complete_run(run: &Path, nodes: &[&str]) -> Vec<Op> {
    for f in [
        "spec.json",
        "history.jsonl",
        "final-state.json",
        "metrics.csv",
        "results.json",
        "index.html",
        "throughput.png",
        "heal-ledger.jsonl",
    ] {
        assert!(run.join(f).is_file(), "{f} missing in {}", run.display());
    }
    let roles = harness::cluster::pipeline::ROLES;
    for node in nodes {
        for role in roles {
            let log = run.join("nodes").join(node).join(format!("{role}.log"));
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            assert!(
                text.contains("\"listening\""),
                "{} lacks a listening line",
                log.display()
            );
        }
    }
    let data = checker::RunData::load(run).expect("run dir parses");
    let mut open: std::collections::HashMap<u64, &Op> = Default::default();
    let mut invokes = 0usize;
    // order id -> status of its last answered read
    let mut last_read: std::collections::HashMap<String, OrderStatus> = Default::default();
    for op in &data.history.ops {
        let Process::Client(p) = op.process else {
            continue;
        };
        if op.op_type == OpType::Invoke {
            invokes += 1;
            assert!(
                open.insert(p, op).is_none(),
                "process {p} invokes twice: {op:?}"
            );
        } else {
            let inv = open
                .remove(&p)
                .unwrap_or_else(|| panic!("completion without invoke: {op:?}"));
            assert_eq!(inv.f, op.f, "completion answers another f: {op:?}");
            assert!(op.time_ns >= inv.time_ns && op.index > inv.index);
            if op.f == F::ReadOrder && op.op_type == OpType::Ok {
                let read: OrderRead = op.payload().expect("a read-order ok value");
                assert_eq!(op.value["order_id"], inv.value["order_id"]);
                last_read.insert(read.order_id, read.status);
            }
        }
    }
    assert!(open.is_empty(), "invokes never completed: {open:?}");
    assert!(invokes >= 50, "only {invokes} operations");
    let acked: Vec<String> = data
        .history
        .ops
        .iter()
        .filter(|o| o.f == F::PlaceOrder && o.op_type == OpType::Ok)
        .filter_map(|o| o.payload::<Placed>()?.order_id)
        .collect();
    // Every acknowledged order was read by its client; under load the workload may stop
    // polling before its saga ends, so terminal is asserted on the quiesced final state.
    for id in &acked {
        assert!(last_read.contains_key(id), "order {id} never read");
    }
    let acked_set: std::collections::HashSet<&str> = acked.iter().map(String::as_str).collect();
    for o in &data.final_state.orders {
        if acked_set.contains(o.order_id.as_str()) {
            assert!(
                o.status.is_terminal(),
                "order {} is {} in the final state",
                o.order_id,
                o.status
            );
        }
    }
    assert!(
        data.final_state.read_errors.is_empty(),
        "{:?}",
        data.final_state.read_errors
    );
    let stored: std::collections::HashSet<&str> = data
        .final_state
        .orders
        .iter()
        .map(|o| o.order_id.as_str())
        .collect();
    let lost: Vec<&String> = acked
        .iter()
        .filter(|id| !stored.contains(id.as_str()))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged orders missing from the final state: {lost:?}",
        lost.len(),
        acked.len()
    );

    let csv = std::fs::read_to_string(run.join("metrics.csv")).expect("metrics.csv");
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("t_s,node,role,metric,labels,value"));
    let mut seen = std::collections::BTreeSet::new();
    let mut last_t = 0.0f64;
    for line in lines {
        let (t, rest) = line.split_once(',').expect("t_s field");
        let t: f64 = t.parse().expect("t_s is seconds");
        assert!(t >= last_t, "t_s goes back: {line}");
        last_t = t;
        let mut f = rest.splitn(3, ',');
        let (node, role) = (f.next().expect("node"), f.next().expect("role"));
        seen.insert((node.to_owned(), role.to_owned()));
        let value = line.rsplit(',').next().expect("value");
        assert!(
            value == "+Inf" || value == "NaN" || value.parse::<f64>().is_ok(),
            "{line}"
        );
    }
    for node in nodes {
        for role in roles {
            assert!(
                seen.contains(&(node.to_string(), role.to_string())),
                "no metrics rows for {node}/{role}"
            );
        }
    }
    data.history.ops
}

/// Proves `harness run --cluster local --time-limit 20s` gives a valid verdict, writes a
/// complete run directory (see `assert_complete_run`), shows plain lines and no progress-bar
/// drawing when stderr is not a terminal, and leaves no process or port behind.
#[test]
fn local_run_is_valid_and_complete() {
    let bin = pipeline_bin();
    let out = tempfile::tempdir().expect("tempdir");
    let out_s = out.path().to_str().expect("utf8");
    let o = harness(&[
        "run",
        "--cluster",
        "local",
        "--time-limit",
        "20s",
        "--seed",
        "42",
        "--out",
        out_s,
    ])
    .arg("--pipeline-bin")
    .arg(&bin)
    .output()
    .expect("runs");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "valid");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !err.contains('\r') && !err.contains('\x1b'),
        "progress drawing on a non-terminal: {err:?}"
    );
    assert!(err.lines().all(|l| l.starts_with("harness: ")), "{err}");
    let run = latest(out.path());
    assert!(run.starts_with(out.path().canonicalize().expect("canon").join("smoke")));
    let ops = assert_complete_run(&run, &["n1", "n2", "n3"]);
    let nemesis = ops.iter().filter(|o| o.process.is_nemesis()).count();
    assert_eq!(nemesis, 4, "pause start and heal, each invoke + info");
    let spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("spec.json")).expect("spec")).expect("json");
    assert_eq!(spec["seed"], 42);
    assert_eq!(spec["cluster"], "local");
    let rerun = spec["rerun"].as_str().expect("rerun");
    assert!(
        rerun.contains("--seed 42") && rerun.contains("--cluster local"),
        "{rerun}"
    );

    assert!(
        processes_mentioning(out_s).is_empty(),
        "processes left behind"
    );
    let ports = ports_in_logs(&run);
    assert_eq!(ports.len(), 15, "3 nodes x 5 roles listened");
    for port in ports {
        std::net::TcpListener::bind(("127.0.0.1", port)).expect("port is free again");
    }
}

/// Runs `harness heal RUN` and asserts it succeeds having healed exactly `n` standing faults.
fn heal_expecting(run: &Path, n: usize) {
    let o = harness(&["heal", run.to_str().expect("utf8")])
        .output()
        .expect("heal runs");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let said = format!("healed {n} ");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(&said),
        "expected '{said}': {}",
        text(&o)
    );
}

/// Proves bad arguments give one clear line and exit 254, and change nothing.
#[test]
fn bad_arguments_exit_254() {
    let out = tempfile::tempdir().expect("tempdir");
    let out_s = out.path().to_str().expect("utf8");
    for args in [
        vec!["run", "--rate", "-3", "--out", out_s],
        vec!["run", "--time-limit", "ten", "--out", out_s],
        vec!["run", "--nodes", "0", "--out", out_s],
        vec!["run", "--scenario", "../x", "--out", out_s],
        vec!["run", "--nemesis", "pause,frobnicate", "--out", out_s],
        vec!["run", "--nemesis-interval", "0s", "--out", out_s],
        vec![
            "run",
            "--fault",
            "kind=pause,role=paymnt,at=1s,for=1s",
            "--out",
            out_s,
        ],
        vec![
            "run",
            "--fault",
            "kind=pause,role=payment,node=n9,at=1s,for=1s",
            "--out",
            out_s,
        ],
        vec!["run", "--no-such-flag"],
        vec!["frobnicate"],
        vec!["analyze", "/nonexistent/run"],
    ] {
        let o = harness(&args).output().expect("runs");
        assert_eq!(o.status.code(), Some(254), "{args:?}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    assert_eq!(
        std::fs::read_dir(out.path()).expect("dir").count(),
        0,
        "nothing written"
    );
}

/// Proves `harness analyze` flags a hand-made double charge (exit 1) and reports a truncated
/// history as a clear error naming the file (exit 2), never a panic.
#[test]
fn analyze_hand_made_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    std::fs::write(d.join("spec.json"), r#"{"scenario":"hand-made","seed":1}"#).expect("w");
    std::fs::write(
        d.join("history.jsonl"),
        concat!(
            r#"{"schema_version":1,"run_id":"hand/1","started_unix_ms":0}"#, "\n",
            r#"{"index":0,"time_ns":10,"process":0,"type":"invoke","f":"place-order","value":{"key":"k1"}}"#, "\n",
            r#"{"index":1,"time_ns":20,"process":0,"type":"ok","f":"place-order","value":{"key":"k1","order_id":"o-1"}}"#, "\n",
        ),
    )
    .expect("w");
    std::fs::write(
        d.join("final-state.json"),
        r#"{"services":["order","payment"],
            "orders":[{"order_id":"o-1","idempotency_key":"k1","status":"completed","amount":100}],
            "payments":[{"key":"o-1:charge","kind":"charge","order_id":"o-1","amount":100},
                        {"key":"o-1:charge","kind":"charge","order_id":"o-1","amount":100}]}"#,
    )
    .expect("w");
    let o = harness(&["analyze", d.to_str().expect("utf8")])
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("double-charge"),
        "{}",
        text(&o)
    );
    let results = std::fs::read_to_string(d.join("results.json")).expect("results");
    assert!(results.contains("\"invalid\""));

    let history = std::fs::read_to_string(d.join("history.jsonl")).expect("r");
    std::fs::write(d.join("history.jsonl"), &history[..history.len() - 15]).expect("w");
    let o = harness(&["analyze", d.to_str().expect("utf8")])
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("history.jsonl") && err.contains("truncated"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

/// Writes a hand-made run with one double charge under `dir`.
fn hand_made_run(dir: &Path) {
    std::fs::create_dir_all(dir).expect("mkdir");
    std::fs::write(
        dir.join("spec.json"),
        r#"{"scenario":"hand-made","seed":3}"#,
    )
    .expect("w");
    std::fs::write(
        dir.join("history.jsonl"),
        concat!(
            r#"{"schema_version":1,"run_id":"hand-made/1","started_unix_ms":1767225600000}"#, "\n",
            r#"{"index":0,"time_ns":10,"process":0,"type":"invoke","f":"place-order","value":{"key":"k1"}}"#, "\n",
            r#"{"index":1,"time_ns":20,"process":0,"type":"ok","f":"place-order","value":{"key":"k1","order_id":"o-1"}}"#, "\n",
        ),
    )
    .expect("w");
    std::fs::write(
        dir.join("final-state.json"),
        r#"{"services":["order","payment"],
            "orders":[{"order_id":"o-1","idempotency_key":"k1","status":"completed","amount":100}],
            "payments":[{"key":"o-1:charge","kind":"charge","order_id":"o-1","amount":100},
                        {"key":"o-1:charge","kind":"charge","order_id":"o-1","amount":100}]}"#,
    )
    .expect("w");
}

/// Proves `analyze --compare` draws a second run on the retry-load graph without writing into
/// it, and that a missing file and a wrong schema version are one clear error naming the file
/// with exit 2, never a panic.
#[test]
fn analyze_compare_and_bad_inputs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    hand_made_run(&a);
    hand_made_run(&b);
    let o = harness(&[
        "analyze",
        a.to_str().expect("utf8"),
        "--compare",
        b.to_str().expect("utf8"),
    ])
    .output()
    .expect("runs");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(a.join("retry-load.png").is_file());
    assert!(
        !b.join("index.html").exists(),
        "the compared run is only read"
    );

    std::fs::remove_file(a.join("final-state.json")).expect("rm");
    let o = harness(&["analyze", a.to_str().expect("utf8")])
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("final-state.json") && !err.contains("panicked"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one line: {err}");

    let history = std::fs::read_to_string(b.join("history.jsonl")).expect("r");
    std::fs::write(
        b.join("history.jsonl"),
        history.replacen("\"schema_version\":1", "\"schema_version\":7", 1),
    )
    .expect("w");
    let o = harness(&["analyze", b.to_str().expect("utf8")])
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("history.jsonl") && err.contains("schema version 7"),
        "{err}"
    );
}
