//! The plain-text verdict `harness lincheck` prints.

use std::fmt::Write as _;

use super::check::Outcome as CheckOutcome;
use super::op::LinHistory;
use crate::verdict::Validity;

/// How many operations of the longest prefix are printed (the last ones, nearest the failure).
pub const MAX_PREFIX_PRINTED: usize = 20;

fn took(outcome: &CheckOutcome) -> String {
    let s = outcome.elapsed.as_secs_f64();
    if s < 1.0 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{s:.2} s")
    }
}

/// The verdict, the time taken and, when invalid, the operation that could not be linearized
/// with the end of the longest linearizable prefix before it.
pub fn report(history: &LinHistory, outcome: &CheckOutcome) -> String {
    let mut out = format!(
        "{} model, {} operations on {} keys\n",
        history.model,
        history.ops.len(),
        outcome.keys.len()
    );
    match (outcome.validity, &outcome.failure) {
        (Validity::Invalid, Some(fail)) => {
            let op = &history.ops[fail.op];
            let _ = writeln!(
                out,
                "invalid ({}): key {:?}: {} by process {} ({}) cannot be linearized",
                took(outcome),
                fail.key,
                op.describe(history.model),
                op.process,
                history.source_kind.name(op.source)
            );
            let skip = fail.prefix.len().saturating_sub(MAX_PREFIX_PRINTED);
            let _ = writeln!(
                out,
                "longest linearizable prefix before it: {} operations, ending in state {}{}",
                fail.prefix.len(),
                fail.state,
                if skip > 0 {
                    format!(" (last {MAX_PREFIX_PRINTED} shown)")
                } else {
                    String::new()
                }
            );
            for (n, &i) in fail.prefix.iter().enumerate().skip(skip) {
                let p = &history.ops[i];
                let _ = writeln!(
                    out,
                    "  #{:<5} {:<12} process {:<6} {}",
                    n + 1,
                    history.source_kind.name(p.source),
                    p.process,
                    p.describe(history.model)
                );
            }
        }
        (Validity::Unknown, _) => {
            let _ = writeln!(
                out,
                "unknown ({}): {}",
                took(outcome),
                outcome.unknown_reason.as_deref().unwrap_or("unknown")
            );
        }
        (v, _) => {
            let _ = writeln!(out, "{v} ({})", took(outcome));
        }
    }
    out
}
