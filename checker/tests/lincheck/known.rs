//! Hand-made histories with known answers, for each model.

use checker::lincheck::ModelKind::{self, Kv, Register, Stock};
use checker::Validity::{self, Invalid, Valid};

use super::{parse, run};

fn verdict(model: ModelKind, text: &str) -> Validity {
    run(&parse(model, text)).validity
}

fn stock(initial: i64, text: &str) -> Validity {
    let mut h = parse(Stock, text);
    h.stock_default = Some(initial);
    run(&h).validity
}

/// Proves the basic register cases: a read concurrent with a write may see either value, a read
/// that starts after a write completed must see it (a stale read is invalid), and the failing
/// operation and the longest prefix before it are the stale read and the write.
#[test]
fn register_reads_and_stale_read() {
    let concurrent_old = r#"
        {"process": 0, "type": "invoke", "f": "write", "value": 1}
        {"process": 1, "type": "invoke", "f": "read"}
        {"process": 1, "type": "ok", "f": "read", "value": null}
        {"process": 0, "type": "ok", "f": "write", "value": 1}
        {"process": 1, "type": "invoke", "f": "read"}
        {"process": 1, "type": "ok", "f": "read", "value": 1}"#;
    assert_eq!(verdict(Register, concurrent_old), Valid);

    let stale = r#"
        {"process": 0, "type": "invoke", "f": "write", "value": 1}
        {"process": 0, "type": "ok", "f": "write", "value": 1}
        {"process": 1, "type": "invoke", "f": "read"}
        {"process": 1, "type": "ok", "f": "read", "value": null}"#;
    let h = parse(Register, stale);
    let out = run(&h);
    assert_eq!(out.validity, Invalid);
    let failure = out.failure.expect("a failure is reported");
    assert_eq!(
        h.ops[failure.op].source, 3,
        "the stale read (line 3) is the culprit"
    );
    assert_eq!(failure.prefix, vec![0], "the write is the longest prefix");
    assert_eq!(failure.state, "1");
}

/// Proves cas semantics: an ok cas needs the expected value; a failed cas is an observation
/// that the value differed, so it is invalid right after a write of `from` and valid when a
/// concurrent write can explain the difference.
#[test]
fn register_cas_ok_and_failed() {
    let ok = r#"
        {"process": 0, "type": "invoke", "f": "write", "value": 1}
        {"process": 0, "type": "ok", "f": "write", "value": 1}
        {"process": 1, "type": "invoke", "f": "cas", "value": [1, 2]}
        {"process": 1, "type": "ok", "f": "cas", "value": [1, 2]}
        {"process": 0, "type": "invoke", "f": "read"}
        {"process": 0, "type": "ok", "f": "read", "value": 2}"#;
    assert_eq!(verdict(Register, ok), Valid);

    let failed_but_equal = r#"
        {"process": 0, "type": "invoke", "f": "write", "value": 1}
        {"process": 0, "type": "ok", "f": "write", "value": 1}
        {"process": 1, "type": "invoke", "f": "cas", "value": [1, 2]}
        {"process": 1, "type": "fail", "f": "cas", "value": [1, 2]}"#;
    assert_eq!(verdict(Register, failed_but_equal), Invalid);

    let failed_explained = r#"
        {"process": 0, "type": "invoke", "f": "write", "value": 1}
        {"process": 0, "type": "ok", "f": "write", "value": 1}
        {"process": 2, "type": "invoke", "f": "write", "value": 5}
        {"process": 1, "type": "invoke", "f": "cas", "value": [1, 2]}
        {"process": 1, "type": "fail", "f": "cas", "value": [1, 2]}
        {"process": 2, "type": "ok", "f": "write", "value": 5}
        {"process": 0, "type": "invoke", "f": "read"}
        {"process": 0, "type": "ok", "f": "read", "value": 5}"#;
    assert_eq!(verdict(Register, failed_explained), Valid);

    let wrong_cas = r#"
        {"process": 1, "type": "invoke", "f": "cas", "value": [1, 2]}
        {"process": 1, "type": "ok", "f": "cas", "value": [1, 2]}"#;
    assert_eq!(verdict(Register, wrong_cas), Invalid);
}

/// Proves info semantics: only the late effect of an info write explains a read (valid), the
/// same history with that write failed instead is invalid, the info write may also never take
/// effect, and it cannot take effect twice.
#[test]
fn register_info_late_effect() {
    let late = |t: &str, reads: &[u64]| {
        let mut s = format!(
            r#"{{"process": 0, "type": "invoke", "f": "write", "value": 1}}
               {{"process": 0, "type": "ok", "f": "write", "value": 1}}
               {{"process": 1, "type": "invoke", "f": "write", "value": 2}}
               {{"process": 1, "type": "{t}", "f": "write", "value": 2}}
               "#
        );
        for r in reads {
            s.push_str(&format!(
                r#"{{"process": 2, "type": "invoke", "f": "read"}}
                   {{"process": 2, "type": "ok", "f": "read", "value": {r}}}
                   "#
            ));
        }
        s
    };
    assert_eq!(verdict(Register, &late("info", &[1, 1, 2, 2])), Valid);
    assert_eq!(verdict(Register, &late("fail", &[1, 1, 2])), Invalid);
    assert_eq!(verdict(Register, &late("info", &[1, 1])), Valid);
    assert_eq!(verdict(Register, &late("info", &[2, 1])), Invalid);
    // An invocation that never completes is info too.
    let open = r#"
        {"process": 1, "type": "invoke", "f": "write", "value": 2}
        {"process": 2, "type": "invoke", "f": "read"}
        {"process": 2, "type": "ok", "f": "read", "value": null}
        {"process": 2, "type": "invoke", "f": "read"}
        {"process": 2, "type": "ok", "f": "read", "value": 2}"#;
    assert_eq!(verdict(Register, open), Valid);
}

/// Proves keys are independent registers: an anomaly on one key is reported on that key even
/// when the other key is fine.
#[test]
fn register_keys_are_independent() {
    let text = r#"
        {"process": 0, "type": "invoke", "f": "write", "key": "a", "value": 1}
        {"process": 0, "type": "ok", "f": "write", "key": "a", "value": 1}
        {"process": 1, "type": "invoke", "f": "read", "key": "b"}
        {"process": 1, "type": "ok", "f": "read", "key": "b", "value": null}
        {"process": 1, "type": "invoke", "f": "read", "key": "a"}
        {"process": 1, "type": "ok", "f": "read", "key": "a", "value": 1}
        {"process": 0, "type": "invoke", "f": "write", "key": "b", "value": 7}
        {"process": 0, "type": "ok", "f": "write", "key": "b", "value": 7}
        {"process": 1, "type": "invoke", "f": "read", "key": "b"}
        {"process": 1, "type": "ok", "f": "read", "key": "b", "value": 1}"#;
    let out = run(&parse(Register, text));
    assert_eq!(out.validity, Invalid);
    assert_eq!(out.failure.expect("failure").key, "b");
    assert_eq!(out.keys.len(), 2);
    // Key a is fine; it was either checked valid or stopped early once b was refuted.
    assert_ne!(out.keys[0].validity, Invalid, "key a is not blamed");
}

/// Proves kv semantics: a missing key reads "", appends concatenate in linearization order
/// (concurrent appends in either order), a failed put did not happen, and reading "ab" then
/// "ba" is invalid.
#[test]
fn kv_get_put_append() {
    let seq = r#"
        {"process": 0, "type": "invoke", "f": "get", "key": "x"}
        {"process": 0, "type": "ok", "f": "get", "key": "x", "value": ""}
        {"process": 0, "type": "invoke", "f": "put", "key": "x", "value": "a"}
        {"process": 0, "type": "ok", "f": "put", "key": "x", "value": "a"}
        {"process": 0, "type": "invoke", "f": "append", "key": "x", "value": "bc"}
        {"process": 0, "type": "ok", "f": "append", "key": "x", "value": "bc"}
        {"process": 1, "type": "invoke", "f": "get", "key": "x"}
        {"process": 1, "type": "ok", "f": "get", "key": "x", "value": "abc"}
        {"process": 1, "type": "invoke", "f": "get", "key": "y"}
        {"process": 1, "type": "ok", "f": "get", "key": "y", "value": null}"#;
    assert_eq!(verdict(Kv, seq), Valid);

    let concurrent = |first: &str, second: &str| {
        format!(
            r#"{{"process": 0, "type": "invoke", "f": "append", "key": "x", "value": "a"}}
               {{"process": 1, "type": "invoke", "f": "append", "key": "x", "value": "b"}}
               {{"process": 0, "type": "ok", "f": "append", "key": "x", "value": "a"}}
               {{"process": 1, "type": "ok", "f": "append", "key": "x", "value": "b"}}
               {{"process": 0, "type": "invoke", "f": "get", "key": "x"}}
               {{"process": 0, "type": "ok", "f": "get", "key": "x", "value": "{first}"}}
               {{"process": 1, "type": "invoke", "f": "get", "key": "x"}}
               {{"process": 1, "type": "ok", "f": "get", "key": "x", "value": "{second}"}}"#
        )
    };
    assert_eq!(verdict(Kv, &concurrent("ab", "ab")), Valid);
    assert_eq!(verdict(Kv, &concurrent("ba", "ba")), Valid);
    assert_eq!(verdict(Kv, &concurrent("ab", "ba")), Invalid);
    assert_eq!(
        verdict(Kv, &concurrent("a", "ab")),
        Invalid,
        "both appends completed"
    );

    let failed_put = r#"
        {"process": 0, "type": "invoke", "f": "put", "key": "x", "value": "a"}
        {"process": 0, "type": "fail", "f": "put", "key": "x"}
        {"process": 1, "type": "invoke", "f": "get", "key": "x"}
        {"process": 1, "type": "ok", "f": "get", "key": "x", "value": "a"}"#;
    assert_eq!(verdict(Kv, failed_put), Invalid);
}

/// Proves kv strings are compared by content: "a" + "bc" equals "ab" + "c" built by a
/// different sequence of appends on another path through the search.
#[test]
fn kv_equal_strings_from_different_appends() {
    let text = r#"
        {"process": 0, "type": "invoke", "f": "put", "key": "x", "value": "ab"}
        {"process": 0, "type": "ok", "f": "put", "key": "x", "value": "ab"}
        {"process": 0, "type": "invoke", "f": "append", "key": "x", "value": "c"}
        {"process": 0, "type": "ok", "f": "append", "key": "x", "value": "c"}
        {"process": 1, "type": "invoke", "f": "get", "key": "x"}
        {"process": 1, "type": "ok", "f": "get", "key": "x", "value": "abc"}
        {"process": 1, "type": "invoke", "f": "put", "key": "x", "value": "a"}
        {"process": 1, "type": "ok", "f": "put", "key": "x", "value": "a"}
        {"process": 1, "type": "invoke", "f": "append", "key": "x", "value": "bc"}
        {"process": 1, "type": "ok", "f": "append", "key": "x", "value": "bc"}
        {"process": 0, "type": "invoke", "f": "get", "key": "x"}
        {"process": 0, "type": "ok", "f": "get", "key": "x", "value": "abc"}"#;
    assert_eq!(verdict(Kv, text), Valid);
}

/// Proves stock semantics with initial stock 5: reserve succeeds iff enough stock and subtracts,
/// a failed reserve is an observation of short stock (invalid when stock was enough), release
/// adds, and an oversell is invalid.
#[test]
fn stock_reserve_release_read() {
    let legal = r#"
        {"process": 0, "type": "invoke", "f": "reserve", "key": "sku-1", "value": 3}
        {"process": 0, "type": "ok", "f": "reserve", "key": "sku-1", "value": 3}
        {"process": 1, "type": "invoke", "f": "reserve", "key": "sku-1", "value": 3}
        {"process": 1, "type": "fail", "f": "reserve", "key": "sku-1", "value": 3}
        {"process": 1, "type": "invoke", "f": "read", "key": "sku-1"}
        {"process": 1, "type": "ok", "f": "read", "key": "sku-1", "value": 2}
        {"process": 0, "type": "invoke", "f": "release", "key": "sku-1", "value": 3}
        {"process": 0, "type": "ok", "f": "release", "key": "sku-1", "value": 3}
        {"process": 0, "type": "invoke", "f": "read", "key": "sku-1"}
        {"process": 0, "type": "ok", "f": "read", "key": "sku-1", "value": 5}"#;
    assert_eq!(stock(5, legal), Valid);

    let oversell = r#"
        {"process": 0, "type": "invoke", "f": "reserve", "value": 3}
        {"process": 1, "type": "invoke", "f": "reserve", "value": 3}
        {"process": 0, "type": "ok", "f": "reserve", "value": 3}
        {"process": 1, "type": "ok", "f": "reserve", "value": 3}"#;
    assert_eq!(stock(5, oversell), Invalid);
    assert_eq!(stock(6, oversell), Valid);

    let refused_with_stock = r#"
        {"process": 0, "type": "invoke", "f": "reserve", "value": 3}
        {"process": 0, "type": "fail", "f": "reserve", "value": 3}"#;
    assert_eq!(stock(5, refused_with_stock), Invalid);
    assert_eq!(stock(2, refused_with_stock), Valid);

    // Concurrent with a release, a refusal is explained by reserving before the release.
    let concurrent = r#"
        {"process": 0, "type": "invoke", "f": "reserve", "value": 4}
        {"process": 0, "type": "ok", "f": "reserve", "value": 4}
        {"process": 1, "type": "invoke", "f": "release", "value": 4}
        {"process": 2, "type": "invoke", "f": "reserve", "value": 3}
        {"process": 2, "type": "fail", "f": "reserve", "value": 3}
        {"process": 1, "type": "ok", "f": "release", "value": 4}
        {"process": 2, "type": "invoke", "f": "read"}
        {"process": 2, "type": "ok", "f": "read", "value": 5}"#;
    assert_eq!(stock(5, concurrent), Valid);
}

/// Proves an info reserve may take effect late (explaining a read that is otherwise
/// impossible) but not before its invocation and not twice.
#[test]
fn stock_info_reserve() {
    let reads = |values: &[i64]| {
        let mut s = String::from(
            r#"{"process": 0, "type": "invoke", "f": "reserve", "value": 4}
               {"process": 0, "type": "info", "f": "reserve", "value": 4}
               "#,
        );
        for v in values {
            s.push_str(&format!(
                r#"{{"process": 1, "type": "invoke", "f": "read"}}
                   {{"process": 1, "type": "ok", "f": "read", "value": {v}}}
                   "#
            ));
        }
        s
    };
    assert_eq!(stock(5, &reads(&[5, 5, 1, 1])), Valid);
    assert_eq!(stock(5, &reads(&[5])), Valid, "it may never take effect");
    assert_eq!(
        stock(5, &reads(&[1, 5])),
        Invalid,
        "an effect is not undone"
    );
    assert_eq!(
        stock(3, &reads(&[3, -1])),
        Invalid,
        "short stock: it could not apply"
    );
    let before_invoke = r#"
        {"process": 1, "type": "invoke", "f": "read"}
        {"process": 1, "type": "ok", "f": "read", "value": 1}
        {"process": 0, "type": "invoke", "f": "reserve", "value": 4}
        {"process": 0, "type": "info", "f": "reserve", "value": 4}"#;
    assert_eq!(stock(5, before_invoke), Invalid);
}
