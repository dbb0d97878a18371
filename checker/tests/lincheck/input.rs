//! The standalone JSONL reader: bad input is an error naming the file and line, never a panic;
//! the writer round-trips; the HTML view shows a failure.

use checker::lincheck::gen::{break_one_read, generate, GenSpec};
use checker::lincheck::{html, jsonl, write_html, ModelKind, HTML_FILE};
use checker::Validity;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::{parse, run};

fn error(model: ModelKind, text: &str) -> String {
    match jsonl::parse(text.as_bytes(), "in.jsonl".as_ref(), model) {
        Ok(h) => panic!("accepted bad input: {h:#?}"),
        Err(e) => e.to_string(),
    }
}

/// Proves each kind of malformed line is rejected with the file name, the line number and the
/// culprit.
#[test]
fn malformed_lines_name_file_and_line() {
    let ok = r#"{"process": 0, "type": "invoke", "f": "write", "value": 1}"#;
    let cases: Vec<(ModelKind, String, &str)> = vec![
        (ModelKind::Register, format!("{ok}\n{{not json\n"), "line 2"),
        (
            ModelKind::Register,
            format!("{ok}\n{{\"process\": 0, \"type\": \"ok\", \"f\": \"read\"}}\n"),
            "does not match",
        ),
        (
            ModelKind::Register,
            "{\"process\": 3, \"type\": \"ok\", \"f\": \"read\", \"value\": 1}\n".into(),
            "no open invocation",
        ),
        (ModelKind::Register, format!("{ok}\n{ok}\n"), "still open"),
        (
            ModelKind::Register,
            "{\"process\": 0, \"type\": \"invoke\", \"f\": \"cas\", \"value\": 1}\n".into(),
            "[from, to]",
        ),
        (
            ModelKind::Kv,
            "{\"process\": 0, \"type\": \"invoke\", \"f\": \"cas\", \"value\": [1, 2]}\n".into(),
            "not an operation of the kv model",
        ),
        (
            ModelKind::Stock,
            "{\"process\": 0, \"type\": \"invoke\", \"f\": \"reserve\", \"value\": -2}\n".into(),
            "non-negative",
        ),
        (
            ModelKind::Register,
            "{\"process\": [1], \"type\": \"invoke\", \"f\": \"read\"}\n".into(),
            "process",
        ),
        (
            ModelKind::Register,
            "{\"process\": 1, \"type\": \"started\", \"f\": \"read\"}\n".into(),
            "line 1",
        ),
    ];
    for (model, text, needle) in cases {
        let msg = error(model, &text);
        assert!(msg.starts_with("in.jsonl: line "), "{msg}");
        assert!(msg.contains(needle), "{needle:?} not in {msg:?}");
    }
    let missing = jsonl::read_file("/nonexistent/h.jsonl".as_ref(), ModelKind::Register)
        .expect_err("missing file");
    assert!(missing.to_string().contains("/nonexistent/h.jsonl"));
}

/// Proves a generated history written as JSONL reads back to the same operations and verdict.
#[test]
fn jsonl_round_trips() {
    for model in [ModelKind::Register, ModelKind::Kv, ModelKind::Stock] {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let mut spec = GenSpec::new(model, 5, 400, 3);
        spec.info_per_mille = 20;
        let h = generate(&spec, &mut rng);
        let text = jsonl::to_jsonl(&h);
        let mut back = jsonl::parse(text.as_bytes(), "x".as_ref(), model).expect("parses");
        back.stock_default = h.stock_default;
        assert_eq!(back.ops.len(), h.ops.len());
        for (a, b) in h.ops.iter().zip(&back.ops) {
            assert_eq!((&a.key, &a.call, a.outcome), (&b.key, &b.call, b.outcome));
            if a.outcome == checker::lincheck::Outcome::Ok {
                assert_eq!(a.observed, b.observed);
            }
        }
        assert_eq!(run(&back).validity, Validity::Valid, "{model}");
    }
}

/// Proves the HTML view of an invalid history draws the failing key's operations with the
/// culprit marked, has no script and nothing fetched, escapes input text, and is written as
/// linearizability.html.
#[test]
fn html_view_shows_the_failure() {
    let h = parse(
        ModelKind::Kv,
        r#"{"process": 0, "type": "invoke", "f": "put", "key": "<k>", "value": "a"}
           {"process": 0, "type": "ok", "f": "put", "key": "<k>", "value": "a"}
           {"process": 1, "type": "invoke", "f": "get", "key": "<k>"}
           {"process": 1, "type": "ok", "f": "get", "key": "<k>", "value": "stale"}"#,
    );
    let out = run(&h);
    assert_eq!(out.validity, Validity::Invalid);
    let page = html::render(&h, &out, "t");
    assert!(
        page.contains("<svg") && page.contains("stroke=\"#c62828\""),
        "{page}"
    );
    assert!(
        page.contains("get -&gt; &quot;stale&quot;"),
        "culprit named: {page}"
    );
    assert!(
        page.contains("&lt;k&gt;") && !page.contains("<k>"),
        "key escaped"
    );
    assert!(page.contains("#1 put"), "prefix numbered");
    assert!(!page.contains("<script") && !page.contains("src=") && !page.contains("href="));
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_html(dir.path(), &page).expect("written");
    assert_eq!(path, dir.path().join(HTML_FILE));

    // A big invalid history draws a bounded number of operations.
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut big = generate(&GenSpec::new(ModelKind::Register, 8, 5000, 1), &mut rng);
    assert!(break_one_read(&mut big, &mut rng));
    let out = run(&big);
    assert_eq!(out.validity, Validity::Invalid);
    let page = html::render(&big, &out, "big");
    assert!(page.matches("<rect").count() <= html::MAX_DRAWN_OPS + 1);
}
