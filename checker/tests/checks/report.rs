//! The report: index.html, PNGs, the paged timeline, signal CSVs, and the runs index.

use std::path::{Path, PathBuf};

use checker::{Params, RunData, Validity};
use formats::history::{OpType, F};
use serde_json::json;

use crate::support::{legal_run, Run};

/// The stored run directory: the legal pause run with fencing switched off and one stale write
/// accepted on n3. Regenerate with `cargo test -p checker --test checks regenerate -- --ignored`.
pub fn stored_fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pause-order-leader-no-fencing")
}

fn fixture_run() -> Run {
    let mut run = legal_run();
    run.spec["scenario"] = json!("pause-order-leader");
    run.spec["no_fencing"] = json!(true);
    run.run_id = "pause-order-leader/20260101T000000.000Z".into();
    run.log(
        "n3",
        "store",
        "stale write accepted (fencing disabled)",
        json!({"domain": "order", "key": "saga/o21", "token": 1, "current_token": 2}),
    );
    run
}

/// Rewrites the stored fixture from the builder (run by hand when the contracts change).
#[test]
#[ignore]
fn regenerate_stored_fixture() {
    let dir = stored_fixture();
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("mkdir");
    fixture_run().write(&dir);
}

/// Copies a run directory (files and one level of folders below `nodes/`) to a fresh temp dir,
/// so reports are never written into the source tree.
pub fn copy_run(from: &Path) -> tempfile::TempDir {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).expect("mkdir");
        for e in std::fs::read_dir(from).expect("read_dir").flatten() {
            let target = to.join(e.file_name());
            if e.file_type().expect("type").is_dir() {
                copy(&e.path(), &target);
            } else {
                std::fs::copy(e.path(), target).expect("copy");
            }
        }
    }
    let dir = tempfile::tempdir().expect("tempdir");
    copy(from, dir.path());
    dir
}

/// Asserts `path` is a PNG of `size` that is not blank: many pixels differ from the background
/// and it uses more than a handful of colours.
pub fn assert_real_png(path: &Path, size: (u32, u32)) {
    let img = image::open(path)
        .unwrap_or_else(|e| panic!("{} decodes: {e}", path.display()))
        .to_rgb8();
    assert_eq!(img.dimensions(), size, "{}", path.display());
    let background = *img.get_pixel(0, 0);
    let differing = img.pixels().filter(|p| **p != background).count();
    assert!(
        differing > 20_000,
        "{}: only {differing} non-background pixels",
        path.display()
    );
    let colours: std::collections::HashSet<[u8; 3]> = img.pixels().map(|p| p.0).collect();
    assert!(
        colours.len() > 20,
        "{}: {} colours",
        path.display(),
        colours.len()
    );
}

/// Proves a report rendered from the stored run directory names the verdict, every check and
/// every image, that each PNG decodes at its stated size and is not blank, and that the
/// evidence (the stale write's log line), the rerun command, the fault/signal table, the
/// timeline, the signal CSVs and the raw files are all there.
#[test]
fn report_from_stored_run() {
    let dir = copy_run(&stored_fixture());
    std::fs::write(dir.path().join("linearizability.html"), "<p>lin</p>").expect("w");
    let run = RunData::load(dir.path()).expect("loads");
    let params = Params::default();
    let checked = checker::checks::check_all(&run, &params);
    let results = &checked.results;
    assert_eq!(results.validity, Validity::Invalid);
    let written = checker::report::write_report(&run, &checked, &params, None).expect("report");
    let html = std::fs::read_to_string(dir.path().join("index.html")).expect("html");
    assert!(
        html.contains(r#"<span class="verdict invalid" id="verdict">INVALID</span>"#),
        "verdict at the top"
    );
    for c in &results.checks {
        assert!(
            html.contains(&format!("id=\"check-{}\"", c.name)),
            "{}",
            c.name
        );
    }
    assert_eq!(written.graphs.len(), 6);
    for g in &written.graphs {
        assert!(
            html.contains(&format!("src=\"{}\"", g.file)),
            "{} in html",
            g.file
        );
        assert_real_png(&dir.path().join(g.file), (g.width, g.height));
    }
    for needle in [
        "nodes/n3/store.log:8",
        "harness run --cluster local --nodes 3 --time-limit 20s --seed 7",
        "quorum_write_p99",
        "href=\"timeline.html\"",
        "href=\"linearizability.html\"",
        "href=\"metrics.csv\"",
        "href=\"nodes/n1/store.log\"",
        "href=\"signals/consumer_lag_records.csv\"",
        "href=\"signals/seam-signals.csv\"",
        "pause-order-leader",
        "no_fencing",
    ] {
        assert!(html.contains(needle), "{needle} missing");
    }
    assert!(!html.contains("<script"), "no JavaScript");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no network"
    );
    let seam = std::fs::read_to_string(dir.path().join("signals/seam-signals.csv")).expect("csv");
    assert!(seam.starts_with("second,consumer_lag_records,"), "{seam}");
    assert_eq!(seam.lines().count(), 21, "header + 20 seconds");
    let raw = std::fs::read_to_string(dir.path().join("signals/leader_token.csv")).expect("csv");
    assert_eq!(raw.lines().count(), 1 + 60, "3 nodes x 20 samples");
    let results_json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("results.json")).expect("r"))
            .expect("json");
    assert_eq!(results_json["validity"], "invalid");
    assert_eq!(results_json["checks"].as_array().map(Vec::len), Some(9));
}

/// Proves the timeline stays usable past 10,000 operations: 24,000 operations are paged 1,000 to
/// a page, every operation appears on exactly one page, and the pages link to each other.
#[test]
fn timeline_pages_every_operation() {
    let mut run = Run::new();
    run.with_metrics = false;
    let pairs = 12_000u64;
    for i in 0..pairs {
        let process = i % 8;
        let at = (i / 8) as f64 * 0.01;
        run.op(
            process,
            F::ReadOrder,
            at,
            0.004,
            OpType::Ok,
            json!({"order_id": "o1"}),
            json!({"order_id": "o1", "status": "completed"}),
        );
    }
    run.fault("f1", "partition", "n1 | n2 n3", 5.0, 8.0);
    let dir = tempfile::tempdir().expect("tempdir");
    run.write(dir.path());
    let data = RunData::load(dir.path()).expect("loads");
    let pairs_list = checker::analysis::pairs(&data.history);
    let faults = checker::analysis::fault_windows(&data.history);
    let pages = checker::report::timeline::write_pages(
        dir.path(),
        &pairs_list,
        &faults,
        checker::analysis::end_ns(&data.history),
        "t",
    )
    .expect("pages");
    assert_eq!(pages.len(), 12);
    let mut seen = vec![0u32; data.history.ops.len()];
    for (n, page) in pages.iter().enumerate() {
        let html = std::fs::read_to_string(dir.path().join(page)).expect("page");
        for part in html.split("title=\"#").skip(1) {
            let index: usize = part
                .split(' ')
                .next()
                .and_then(|s| s.parse().ok())
                .expect("index");
            seen[index] += 1;
        }
        if n + 1 < pages.len() {
            assert!(html.contains(&format!("href=\"timeline-{}.html\">next", n + 2)));
        }
        assert!(html.contains(&format!("Page {} of 12", n + 1)));
    }
    let invokes: Vec<usize> = data
        .history
        .ops
        .iter()
        .filter(|o| o.op_type == OpType::Invoke && !o.process.is_nemesis())
        .map(|o| o.index as usize)
        .collect();
    assert_eq!(invokes.len(), 12_000);
    assert!(
        invokes.iter().all(|&i| seen[i] == 1),
        "every operation exactly once"
    );
    let with_fault = std::fs::read_to_string(dir.path().join("timeline-5.html")).expect("p5");
    assert!(
        with_fault.contains("f1 partition"),
        "fault band named on its page"
    );
}

/// Proves the runs index lists every run newest first with scenario, start, seed, verdict,
/// duration and link, skips `latest`, and shows a run that was never checked.
#[test]
fn runs_index_lists_runs_newest_first() {
    let reports = tempfile::tempdir().expect("tempdir");
    let mut older = legal_run();
    older.started_unix_ms = 1_767_225_600_000;
    let mut newer = fixture_run();
    newer.started_unix_ms = 1_767_229_200_000;
    let a = reports.path().join("pause/20260101T000000.000Z");
    let b = reports
        .path()
        .join("pause-order-leader/20260101T010000.000Z");
    let c = reports.path().join("crashed/20251231T000000.000Z");
    for (dir, run) in [(&a, &older), (&b, &newer), (&c, &legal_run())] {
        std::fs::create_dir_all(dir).expect("mkdir");
        run.write(dir);
    }
    std::fs::write(c.join("history.jsonl"), "").expect("empty history");
    checker::analyze(&a, &Params::default()).expect("a");
    checker::analyze(&b, &Params::default()).expect("b");
    std::os::unix::fs::symlink("pause/20260101T000000.000Z", reports.path().join("latest"))
        .expect("link");
    let n = checker::report::write_runs_index(reports.path()).expect("index");
    assert_eq!(n, 3);
    let html = std::fs::read_to_string(reports.path().join("index.html")).expect("html");
    let pos = |s: &str| html.find(s).unwrap_or_else(|| panic!("{s} in {html}"));
    assert!(
        pos("pause-order-leader/20260101T010000.000Z/index.html")
            < pos("pause/20260101T000000.000Z/index.html")
    );
    assert!(pos("2026-01-01 01:00:00Z") < pos("2026-01-01 00:00:00Z"));
    assert!(
        html.contains(r#"<td class="invalid">invalid</td>"#),
        "the fixture's verdict"
    );
    assert!(
        html.contains(r#"<td class="valid">valid</td>"#),
        "the legal run's verdict"
    );
    assert!(html.contains("not checked"), "the crashed run");
    assert!(html.contains("<td>18.7 s</td>"), "duration shown");
    assert!(
        html.contains("<td>20 s (limit)</td>"),
        "the unchecked run's time limit"
    );
    assert!(!html.contains("latest/"), "latest is not listed twice");
}

/// A legal run whose pipeline had no retry budget and whose order roles retried, per second
/// and node, `base` (`peak` from 8 to 14 s) cumulatively towards payment, and that times
/// `inventory_scale` towards inventory.
fn storm_run(peak: f64, base: f64, inventory_scale: f64) -> Run {
    let mut storm = legal_run();
    storm.spec["no_retry_budget"] = json!(true);
    storm.run_id = "storm/1".into();
    storm.metrics.retain(|m| m.3 != "retry_attempts_total");
    let mut retries = 0.0;
    for s in 0..20 {
        retries += if (8..14).contains(&s) { peak } else { base };
        for node in ["n1", "n2", "n3"] {
            for d in ["payment", "inventory"] {
                let l = format!("{{downstream=\"{d}\"}}");
                let scale = if d == "payment" { 1.0 } else { inventory_scale };
                storm.metric(
                    s as f64 + 0.02,
                    node,
                    "order",
                    "retry_attempts_total",
                    &l,
                    retries * scale,
                );
            }
        }
    }
    storm
}

/// Proves the retry-load graph draws two runs (with and without the budget) on one picture,
/// and that analyzing with a comparison names both runs in the legend (different pixels from
/// the single-run graph).
#[test]
fn retry_graph_compares_two_runs() {
    let with_budget = copy_run(&stored_fixture());
    let without = tempfile::tempdir().expect("tempdir");
    let storm = storm_run(30.0, 1.0, 1.0);
    storm.write(without.path());
    checker::analyze(with_budget.path(), &Params::default()).expect("single");
    let single = std::fs::read(with_budget.path().join("retry-load.png")).expect("png");
    checker::analyze_compared(with_budget.path(), Some(without.path()), &Params::default())
        .expect("compared");
    let path = with_budget.path().join("retry-load.png");
    assert_real_png(&path, checker::report::plot_metrics::RETRY_SIZE);
    assert_ne!(std::fs::read(&path).expect("png"), single);
    assert!(
        !without.path().join("index.html").exists(),
        "the other run is only read"
    );
}

/// Writes demo runs to `$CHECKER_DEMO_DIR` for looking at the graphs by eye: the stored
/// fixture, a retry storm without the budget compared with it, and a busy run of 12,000
/// operations over 40 processes with failures, timeouts and two overlapping faults.
#[test]
#[ignore]
fn demo_runs_for_viewing() {
    let Some(out) = std::env::var_os("CHECKER_DEMO_DIR") else {
        eprintln!("set CHECKER_DEMO_DIR to write the demo runs");
        return;
    };
    let out = PathBuf::from(out);
    let fixture = out.join("fixture");
    std::fs::create_dir_all(&fixture).expect("mkdir");
    fixture_run().write(&fixture);
    let storm_dir = out.join("storm");
    std::fs::create_dir_all(&storm_dir).expect("mkdir");
    let storm = storm_run(12.0, 0.5, 0.6);
    storm.write(&storm_dir);
    checker::analyze(&storm_dir, &Params::default()).expect("storm");
    checker::analyze_compared(&fixture, Some(&storm_dir), &Params::default()).expect("fixture");

    let busy_dir = out.join("busy");
    std::fs::create_dir_all(&busy_dir).expect("mkdir");
    let mut busy = Run::new();
    busy.with_metrics = false;
    busy.fault("f1", "partition", "n1 | n2 n3", 20.0, 35.0);
    busy.fault("f2", "latency", "order->payment 200ms", 28.0, 45.0);
    let mut retired = std::collections::BTreeSet::new();
    for i in 0..12_000u64 {
        let mut process = i % 40;
        while retired.contains(&process) {
            process += 40;
        }
        let at = (i / 40) as f64 * 0.2 + (i % 40) as f64 * 0.004;
        let in_fault = (20.0..45.0).contains(&at);
        let (outcome, latency) = match (in_fault, i % 23) {
            (true, 0) => (OpType::Info, 0.19),
            (true, 1..=3) => (OpType::Fail, 0.05),
            (true, _) => (OpType::Ok, 0.03 + (i % 11) as f64 * 0.012),
            (false, 0) => (OpType::Fail, 0.004),
            (false, _) => (OpType::Ok, 0.002 + (i % 13) as f64 * 0.0007),
        };
        if outcome == OpType::Info {
            retired.insert(process);
        }
        busy.op(
            process,
            F::ReadOrder,
            at,
            latency,
            outcome,
            json!({"order_id": "o1"}),
            json!({"order_id": "o1", "status": "completed"}),
        );
    }
    busy.write(&busy_dir);
    checker::analyze(&busy_dir, &Params::default()).expect("busy");
}
