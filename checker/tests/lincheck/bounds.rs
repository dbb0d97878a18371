//! The time and memory bounds, and the early stop of other parts.

use std::time::{Duration, Instant};

use checker::lincheck::{check, CheckOutcome, LinHistory, ModelKind, Options};
use checker::Validity;

use super::parse;

/// A register history that is hard to refute: `n` concurrent writes of distinct values that
/// never complete (info), then a read of a value none of them wrote. Every subset of the writes
/// (with its last value) is a distinct configuration, so refuting it takes about 2^n steps.
fn pathological(n: usize, key: &str) -> String {
    let mut s = String::new();
    for p in 0..n {
        s.push_str(&format!(
            "{{\"process\": {p}, \"type\": \"invoke\", \"f\": \"write\", \"key\": \"{key}\", \"value\": {p}}}\n"
        ));
    }
    s.push_str(&format!(
        "{{\"process\": 999, \"type\": \"invoke\", \"f\": \"read\", \"key\": \"{key}\"}}\n\
         {{\"process\": 999, \"type\": \"ok\", \"f\": \"read\", \"key\": \"{key}\", \"value\": -1}}\n"
    ));
    s
}

fn timed(h: &LinHistory, options: &Options) -> (CheckOutcome, Duration) {
    let started = Instant::now();
    let out = check(h, options);
    (out, started.elapsed())
}

/// Proves a pathological history answers unknown at the time limit, promptly, naming the bound.
#[test]
fn time_limit_gives_unknown() {
    let h = parse(ModelKind::Register, &pathological(40, "x"));
    let options = Options {
        time_limit: Duration::from_millis(200),
        ..Options::default()
    };
    let (out, took) = timed(&h, &options);
    assert_eq!(out.validity, Validity::Unknown, "{out:#?}");
    let reason = out.unknown_reason.expect("a reason");
    assert!(reason.contains("time limit"), "{reason}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

/// Proves the memory bound answers unknown long before the time limit, and that the same
/// history with the bound raised is still running at the time limit (the bound is what stopped
/// it, not the history being easy).
#[test]
fn memory_bound_gives_unknown() {
    let h = parse(ModelKind::Register, &pathological(40, "x"));
    let tight = Options {
        time_limit: Duration::from_secs(20),
        memory_limit_bytes: 4 << 20,
        ..Options::default()
    };
    let (out, took) = timed(&h, &tight);
    assert_eq!(out.validity, Validity::Unknown, "{out:#?}");
    let reason = out.unknown_reason.expect("a reason");
    assert!(reason.contains("memory"), "{reason}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(out.keys[0].memory_bytes >= 4 << 20, "{:?}", out.keys[0]);

    let loose = Options {
        time_limit: Duration::from_millis(300),
        memory_limit_bytes: 1 << 40,
        ..Options::default()
    };
    let (out, _) = timed(&h, &loose);
    assert!(out.unknown_reason.expect("reason").contains("time limit"));
}

/// Proves that one key found not linearizable stops the search of the others: a pathological
/// key next to a small invalid key gives invalid well before a long time limit.
#[test]
fn invalid_key_stops_the_others() {
    let mut text = pathological(40, "hard");
    text.push_str(
        r#"{"process": 5000, "type": "invoke", "f": "write", "key": "easy", "value": 1}
{"process": 5000, "type": "ok", "f": "write", "key": "easy", "value": 1}
{"process": 5000, "type": "invoke", "f": "read", "key": "easy"}
{"process": 5000, "type": "ok", "f": "read", "key": "easy", "value": 2}
"#,
    );
    let h = parse(ModelKind::Register, &text);
    let options = Options {
        time_limit: Duration::from_secs(60),
        threads: 2,
        ..Options::default()
    };
    let (out, took) = timed(&h, &options);
    assert_eq!(out.validity, Validity::Invalid, "{out:#?}");
    assert_eq!(out.failure.expect("failure").key, "easy");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    let hard = out.keys.iter().find(|k| k.key == "hard").expect("hard key");
    assert_eq!(hard.validity, Validity::Unknown);
    assert!(hard
        .unknown_reason
        .as_deref()
        .unwrap_or("")
        .contains("stopped"));
}
