//! Tests of `checker::lincheck`: hand-made histories with known answers for every model,
//! randomised histories cross-checked against a brute-force checker, the time and memory
//! bounds, the readers of both inputs, and the HTML view.

mod bounds;
mod brute;
mod input;
mod inventory;
mod known;

use checker::lincheck::{check, jsonl, CheckOutcome, LinHistory, ModelKind, Options};

/// Parses hand-written JSONL events (one per line, leading spaces ignored).
pub fn parse(model: ModelKind, text: &str) -> LinHistory {
    let text: String = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| format!("{l}\n"))
        .collect();
    jsonl::parse(text.as_bytes(), "test.jsonl".as_ref(), model).expect("test history parses")
}

/// Checks with generous bounds.
pub fn run(history: &LinHistory) -> CheckOutcome {
    check(
        history,
        &Options {
            time_limit: std::time::Duration::from_secs(20),
            ..Options::default()
        },
    )
}
