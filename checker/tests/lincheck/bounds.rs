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

/// Stock operations that all end in info (timeouts), invoked at once: `reserves` of 1 and of 2
/// units and `releases` of 1, then one read answering `available`.
fn timed_out_stock(reserves: usize, releases: usize, available: i64) -> String {
    let mut s = String::new();
    let mut p = 0;
    for (f, qty, n) in [
        ("reserve", 1, reserves),
        ("reserve", 2, reserves),
        ("release", 1, releases),
    ] {
        for _ in 0..n {
            s.push_str(&format!(
                "{{\"process\": {p}, \"type\": \"invoke\", \"f\": \"{f}\", \"key\": \"s\", \"value\": {qty}}}\n"
            ));
            p += 1;
        }
    }
    s.push_str(&format!(
        "{{\"process\": {p}, \"type\": \"invoke\", \"f\": \"read\", \"key\": \"s\"}}\n\
         {{\"process\": {p}, \"type\": \"ok\", \"f\": \"read\", \"key\": \"s\", \"value\": {available}}}\n"
    ));
    s
}

/// Proves that many timed-out operations with equal commands do not blow up the search: 160
/// info operations (2^160 subsets of them could have taken effect) in three groups of equal
/// commands are decided both ways, because operations of one group are interchangeable and the
/// search takes them in order. From 1000 units, 60 reserves of 1, 60 of 2 and 40 releases of 1
/// can leave anything from 820 to 1040: a read of 900 or 1040 is explained, 819 and 1041 are not.
#[test]
fn interchangeable_info_operations_are_decided() {
    let options = Options {
        time_limit: Duration::from_secs(20),
        ..Options::default()
    };
    for (available, expected) in [
        (900, Validity::Valid),
        (1040, Validity::Valid),
        (820, Validity::Valid),
        (819, Validity::Invalid),
        (1041, Validity::Invalid),
    ] {
        let mut h = parse(ModelKind::Stock, &timed_out_stock(60, 40, available));
        h.stock_default = Some(1000);
        let out = check(&h, &options);
        assert_eq!(out.validity, expected, "read {available}: {out:#?}");
    }
}
