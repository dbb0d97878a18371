//! The HTML view of a check: a verdict line, a table of keys and, when a key is not
//! linearizable, its operations on a time axis (one row per process, inline SVG) with the
//! longest linearizable prefix numbered in order and the operation that could not follow it
//! marked. Plain HTML and SVG: no script, nothing fetched.

use std::fmt::Write as _;

use super::check::{Failure, Outcome as CheckOutcome};
use super::op::{LinHistory, Outcome};

/// The most operations drawn on the time axis (the ones leading up to the failure).
pub const MAX_DRAWN_OPS: usize = 150;
/// The most prefix operations listed in the table under the drawing.
pub const MAX_PREFIX_ROWS: usize = 50;
/// The most keys listed in the key table.
pub const MAX_KEY_ROWS: usize = 500;

const WIDTH_PX: f64 = 1100.0;
const LABEL_PX: f64 = 90.0;
const ROW_PX: f64 = 30.0;
const TOP_PX: f64 = 30.0;

const STYLE: &str = "body{font-family:sans-serif;margin:1.5em;color:#222}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:2px 8px;\
font-size:13px;text-align:left}.valid{color:#1a7f37}.invalid{color:#c62828}\
.unknown{color:#9a6700}code{background:#f4f4f4;padding:1px 4px}svg{border:1px solid #ddd}";

/// Escapes text for HTML and SVG (the report's escaping).
use crate::report::timeline::escape as esc;

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\
         <style>{STYLE}</style></head><body><h1>{t}</h1>\n{body}</body></html>\n",
        t = esc(title)
    )
}

/// A page saying the operations could not be read.
pub fn render_problem(title: &str, problem: &str) -> String {
    page(
        title,
        &format!(
            "<p class=\"unknown\"><b>unknown</b>: the operations could not be read: {}</p>",
            esc(problem)
        ),
    )
}

/// The view of `outcome`, a check of `history`.
pub fn render(history: &LinHistory, outcome: &CheckOutcome, title: &str) -> String {
    let mut body = String::new();
    let v = outcome.validity;
    let _ = writeln!(
        body,
        "<p class=\"{c}\"><b>{c}</b>: {n} operations on {k} keys, model <code>{m}</code>, \
         checked in {ms:.1} ms{why}</p>",
        c = v.as_str(),
        n = history.ops.len(),
        k = outcome.keys.len(),
        m = history.model,
        ms = outcome.elapsed.as_secs_f64() * 1e3,
        why = outcome
            .unknown_reason
            .as_ref()
            .map(|r| format!(" ({})", esc(r)))
            .unwrap_or_default(),
    );
    if let Some(failure) = &outcome.failure {
        failure_section(&mut body, history, failure);
    }
    key_table(&mut body, outcome);
    page(title, &body)
}

fn key_table(body: &mut String, outcome: &CheckOutcome) {
    body.push_str(
        "<h2>Keys</h2><table><tr><th>key</th><th>operations checked</th>\
                   <th>verdict</th><th>configurations explored</th><th>note</th></tr>\n",
    );
    for k in outcome.keys.iter().take(MAX_KEY_ROWS) {
        let _ = writeln!(
            body,
            "<tr><td><code>{}</code></td><td>{}</td><td class=\"{v}\">{v}</td><td>{}</td>\
             <td>{}</td></tr>",
            esc(&k.key),
            k.ops_checked,
            k.configurations,
            esc(k.unknown_reason.as_deref().unwrap_or("")),
            v = k.validity.as_str(),
        );
    }
    body.push_str("</table>\n");
    if outcome.keys.len() > MAX_KEY_ROWS {
        let _ = writeln!(
            body,
            "<p>{} more keys not listed.</p>",
            outcome.keys.len() - MAX_KEY_ROWS
        );
    }
}

fn failure_section(body: &mut String, history: &LinHistory, failure: &Failure) {
    let stuck = &history.ops[failure.op];
    let _ = write!(
        body,
        "<h2>Key <code>{key}</code> is not linearizable</h2>\n<p>The longest linearizable \
         prefix found has {n} operations (numbered below in linearization order) and leaves \
         the state at <code>{state}</code>. After it, <b>{op}</b> by process {p} ({src}) cannot \
         be linearized: it must take effect before its completion (the red line), and no \
         order of the operations still open makes it possible.</p>\n",
        key = esc(&failure.key),
        n = failure.prefix.len(),
        state = esc(&failure.state),
        op = esc(&stuck.describe(history.model)),
        p = esc(&stuck.process),
        src = history.place(stuck),
    );
    timeline(body, history, failure);
    prefix_table(body, history, failure);
}

/// The operations drawn: those of the failing key invoked up to the failing operation's
/// completion, the last [`MAX_DRAWN_OPS`] of them.
fn drawn_ops(history: &LinHistory, failure: &Failure) -> Vec<usize> {
    let stuck = &history.ops[failure.op];
    let until = stuck.complete_pos.unwrap_or(u64::MAX);
    let mut ops: Vec<usize> = (0..history.ops.len())
        .filter(|&i| history.ops[i].key == failure.key && history.ops[i].invoke_pos <= until)
        .collect();
    ops.sort_by_key(|&i| history.ops[i].invoke_pos);
    let skip = ops.len().saturating_sub(MAX_DRAWN_OPS);
    let mut drawn = ops.split_off(skip);
    if !drawn.contains(&failure.op) {
        drawn.push(failure.op);
    }
    drawn
}

fn timeline(body: &mut String, history: &LinHistory, failure: &Failure) {
    let drawn = drawn_ops(history, failure);
    let mut processes: Vec<&str> = drawn
        .iter()
        .map(|&i| history.ops[i].process.as_str())
        .collect();
    processes.sort_by(|a, b| match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => a.cmp(b),
    });
    processes.dedup();
    let t0 = drawn
        .iter()
        .map(|&i| history.ops[i].invoke_time)
        .min()
        .unwrap_or(0);
    let stuck = &history.ops[failure.op];
    let t_end = drawn
        .iter()
        .filter_map(|&i| history.ops[i].complete_time)
        .chain(std::iter::once(stuck.invoke_time))
        .max()
        .unwrap_or(t0);
    let span = (t_end.saturating_sub(t0)).max(1) as f64 * 1.08;
    let plot_px = WIDTH_PX - LABEL_PX - 10.0;
    let x = |t: u64| LABEL_PX + (t.saturating_sub(t0) as f64 / span) * plot_px;
    let height = TOP_PX + ROW_PX * processes.len() as f64 + 10.0;
    let _ = writeln!(
        body,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH_PX}\" height=\"{height}\" \
         font-size=\"11\"><text x=\"4\" y=\"16\">process</text>\
         <text x=\"{LABEL_PX}\" y=\"16\">time \u{2192} ({} operations of this key shown)</text>",
        drawn.len()
    );
    for (row, p) in processes.iter().enumerate() {
        let y = TOP_PX + ROW_PX * row as f64;
        let _ = writeln!(
            body,
            "<text x=\"4\" y=\"{ty}\">{}</text><line x1=\"{LABEL_PX}\" y1=\"{ly}\" \
             x2=\"{WIDTH_PX}\" y2=\"{ly}\" stroke=\"#eee\"/>",
            esc(p),
            ty = y + 17.0,
            ly = y + ROW_PX - 2.0,
        );
    }
    let order: std::collections::HashMap<usize, usize> = failure
        .prefix
        .iter()
        .enumerate()
        .map(|(n, &i)| (i, n + 1))
        .collect();
    for &i in &drawn {
        let op = &history.ops[i];
        let row = processes.iter().position(|p| *p == op.process).unwrap_or(0);
        let y = TOP_PX + ROW_PX * row as f64 + 3.0;
        let x1 = x(op.invoke_time);
        let x2 = op.complete_time.map_or(WIDTH_PX - 2.0, x).max(x1 + 4.0);
        let (fill, dash) = match op.outcome {
            Outcome::Ok => ("#d5ecd5", ""),
            Outcome::Fail => ("#f6dada", ""),
            Outcome::Info => ("#e6e6e6", " stroke-dasharray=\"4 3\""),
        };
        let (stroke, width) = if i == failure.op {
            ("#c62828", 3)
        } else {
            ("#777", 1)
        };
        let label = op.describe(history.model);
        let _ = write!(
            body,
            "<g><title>{t}</title><rect x=\"{x1:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" \
             height=\"{h}\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"{width}\"{dash}/>",
            t = esc(&format!(
                "{} — process {} — {}",
                label,
                op.process,
                history.place(op)
            )),
            w = x2 - x1,
            h = ROW_PX - 8.0,
        );
        let mut text = label;
        if let Some(n) = order.get(&i) {
            text = format!("#{n} {text}");
        }
        if x2 - x1 > 30.0 {
            let max_chars = ((x2 - x1) / 6.0) as usize;
            let shown: String = text.chars().take(max_chars).collect();
            let _ = write!(
                body,
                "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                x1 + 3.0,
                y + 15.0,
                esc(&shown)
            );
        }
        body.push_str("</g>\n");
    }
    let deadline_x = stuck.complete_time.map_or(WIDTH_PX - 2.0, x);
    let _ = writeln!(
        body,
        "<line x1=\"{deadline_x:.1}\" y1=\"20\" x2=\"{deadline_x:.1}\" y2=\"{height}\" \
         stroke=\"#c62828\" stroke-dasharray=\"6 3\"/></svg>"
    );
    body.push_str(
        "<p>Green: ok; red fill: failed; grey dashed: info (open to the end). \
         <b>#n</b>: position in the longest linearizable prefix. Red outline: the operation \
         that cannot be linearized.</p>\n",
    );
}

fn prefix_table(body: &mut String, history: &LinHistory, failure: &Failure) {
    let skip = failure.prefix.len().saturating_sub(MAX_PREFIX_ROWS);
    let _ = writeln!(
        body,
        "<h3>End of the longest linearizable prefix</h3><p>{skip} earlier operations not \
         listed.</p><table><tr><th>#</th><th>where</th><th>process</th><th>operation</th></tr>"
    );
    for (n, &i) in failure.prefix.iter().enumerate().skip(skip) {
        let op = &history.ops[i];
        let _ = writeln!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            n + 1,
            history.place(op),
            esc(&op.process),
            esc(&op.describe(history.model))
        );
    }
    let op = &history.ops[failure.op];
    let _ = writeln!(
        body,
        "<tr><td class=\"invalid\">\u{2717}</td><td>{}</td><td>{}</td><td class=\"invalid\">\
         <code>{}</code> cannot follow</td></tr></table>",
        history.place(op),
        esc(&op.process),
        esc(&op.describe(history.model))
    );
}
