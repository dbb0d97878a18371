//! `harness lincheck FILE --model ...`: the verdict printed and its exit code (0 valid,
//! 1 invalid, 2 unknown), and bad input rejected with exit 254 and one line naming the culprit.

use std::path::Path;

use super::{harness, text};

fn write(dir: &Path, name: &str, lines: &[&str]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, lines.join("\n") + "\n").expect("write input");
    path.to_string_lossy().into_owned()
}

const WRITE_1: &str = r#"{"process": 0, "type": "invoke", "f": "write", "value": 1}"#;
const WROTE_1: &str = r#"{"process": 0, "type": "ok", "f": "write", "value": 1}"#;
const READ: &str = r#"{"process": 1, "type": "invoke", "f": "read"}"#;

/// Proves a linearizable file exits 0 and a stale read exits 1 naming the read (line 4), the
/// prefix before it (the write at line 1) and the state; --html writes the view.
#[test]
fn valid_and_invalid_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = write(
        dir.path(),
        "good.jsonl",
        &[
            WRITE_1,
            WROTE_1,
            READ,
            r#"{"process": 1, "type": "ok", "f": "read", "value": 1}"#,
        ],
    );
    let out = harness(&["lincheck", &good, "--model", "register"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("valid ("),
        "{}",
        text(&out)
    );

    let bad = write(
        dir.path(),
        "bad.jsonl",
        &[
            WRITE_1,
            WROTE_1,
            READ,
            r#"{"process": 1, "type": "ok", "f": "read", "value": null}"#,
        ],
    );
    let html = dir.path().join("view.html");
    let out = harness(&[
        "lincheck",
        &bad,
        "--model",
        "register",
        "--html",
        &html.to_string_lossy(),
    ])
    .output()
    .expect("runs");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("read -> null by process 1 (line 3) cannot be linearized")
            && stdout.contains("1 operations, ending in state 1")
            && stdout.contains("line 1"),
        "{}",
        text(&out)
    );
    let page = std::fs::read_to_string(&html).expect("html written");
    assert!(page.contains("<svg"));
}

/// Proves a history too hard for the time limit exits 2 (unknown) promptly.
#[test]
fn time_limit_exits_unknown() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut lines: Vec<String> = (0..40)
        .map(|p| format!(r#"{{"process": {p}, "type": "invoke", "f": "write", "value": {p}}}"#))
        .collect();
    lines.push(r#"{"process": 99, "type": "invoke", "f": "read"}"#.into());
    lines.push(r#"{"process": 99, "type": "ok", "f": "read", "value": -1}"#.into());
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let file = write(dir.path(), "hard.jsonl", &refs);
    let started = std::time::Instant::now();
    let out = harness(&[
        "lincheck",
        &file,
        "--model",
        "register",
        "--time-limit",
        "300ms",
    ])
    .output()
    .expect("runs");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("unknown"),
        "{}",
        text(&out)
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

/// Proves bad input exits 254 with one lowercase line naming the file and line (or the
/// argument), and never a panic.
#[test]
fn bad_input_exits_254() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broken = write(
        dir.path(),
        "broken.jsonl",
        &[WRITE_1, "{\"process\": 0, \"type\":"],
    );
    let stock = write(
        dir.path(),
        "stock.jsonl",
        &[r#"{"process": 0, "type": "invoke", "f": "reserve", "value": 1}"#],
    );
    let cases: Vec<(Vec<&str>, String)> = vec![
        (
            vec!["lincheck", &broken, "--model", "register"],
            format!("{broken}: line 2:"),
        ),
        (
            vec!["lincheck", "/nonexistent.jsonl", "--model", "kv"],
            "/nonexistent.jsonl".into(),
        ),
        (
            vec!["lincheck", &stock, "--model", "stock"],
            "--initial".into(),
        ),
        (
            vec!["lincheck", &stock, "--model", "kv", "--initial", "3"],
            "--initial 3".into(),
        ),
        (vec!["lincheck", &stock, "--model", "graph"], "graph".into()),
    ];
    for (args, needle) in cases {
        let out = harness(&args).output().expect("runs");
        assert_eq!(out.status.code(), Some(254), "{args:?}: {}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&needle),
            "{needle:?} missing: {}",
            text(&out)
        );
        assert!(!stderr.contains("panicked"), "{}", text(&out));
    }
    let out = harness(&["lincheck", &stock, "--model", "stock", "--initial", "1"])
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "an open reserve is fine: {}",
        text(&out)
    );
}
