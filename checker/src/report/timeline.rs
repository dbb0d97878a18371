//! The paged operation timeline: `timeline.html`, `timeline-2.html`, ... Each page holds
//! [`OPS_PER_PAGE`] operations in invoke order, one column per process, time running down, fault
//! periods as bands. Every operation has a tooltip (the `title` attribute, no JavaScript). Past
//! [`MAX_PAGES`] pages the last page says which operations are not paged and where they are.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::analysis::{FaultWindow, Outcome, Pair};
use formats::history::Process;

/// Operations per page.
pub const OPS_PER_PAGE: usize = 1000;
/// Most pages written.
pub const MAX_PAGES: usize = 100;
/// Height of the time axis of a page, in CSS pixels.
const PAGE_H_PX: f64 = 2400.0;
/// Width of one process column.
const LANE_W_PX: usize = 96;
/// Longest value text in a tooltip.
const MAX_TOOLTIP_VALUE: usize = 300;

/// The file name of page `n` (1-based).
pub fn page_file(n: usize) -> String {
    if n <= 1 {
        "timeline.html".into()
    } else {
        format!("timeline-{n}.html")
    }
}

/// Escapes text for HTML content and attributes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn class(o: Outcome) -> &'static str {
    o.as_str()
}

fn tooltip(p: &Pair<'_>) -> String {
    let value = p
        .completion
        .map(|c| &c.value)
        .unwrap_or(&p.invoke.value)
        .to_string();
    let value = crate::report::png::truncate(&value, MAX_TOOLTIP_VALUE);
    let mut t = format!(
        "#{} process {} {} {}\ninvoked {:.3} s",
        p.invoke.index,
        p.invoke.process,
        p.invoke.f,
        p.outcome().as_str(),
        p.invoke.time_ns as f64 / 1e9
    );
    match p.latency_ns() {
        Some(l) => {
            let _ = write!(t, ", latency {:.1} ms", l as f64 / 1e6);
        }
        None => t.push_str(", never completed"),
    }
    if let Some(node) = &p.invoke.node {
        let _ = write!(t, "\nnode {node}");
    }
    if let Some(e) = p.completion.and_then(|c| c.error.as_ref()) {
        let _ = write!(t, "\nerror {e}");
    }
    let _ = write!(t, "\n{value}");
    t
}

struct Page<'p, 'a> {
    n: usize,
    pages: usize,
    first: usize,
    ops: &'p [Pair<'a>],
    total: usize,
}

fn nav(page: &Page<'_, '_>) -> String {
    let mut s = String::from("<nav>");
    let link = |n: usize, text: &str| format!("<a href=\"{}\">{text}</a> ", page_file(n));
    if page.n > 1 {
        s.push_str(&link(1, "first"));
        s.push_str(&link(page.n - 1, "previous"));
    }
    if page.n < page.pages {
        s.push_str(&link(page.n + 1, "next"));
        s.push_str(&link(page.pages, "last"));
    }
    s.push_str("<a href=\"index.html\">report</a><br>pages: ");
    for n in 1..=page.pages {
        if n == page.n {
            let _ = write!(s, "<b>{n}</b> ");
        } else {
            s.push_str(&link(n, &n.to_string()));
        }
    }
    s.push_str("</nav>");
    s
}

fn render(page: &Page<'_, '_>, faults: &[FaultWindow], end_ns: u64, run_id: &str) -> String {
    let t0 = page.ops.iter().map(|p| p.invoke.time_ns).min().unwrap_or(0);
    let t1 = page
        .ops
        .iter()
        .map(|p| p.completion.map_or(end_ns, |c| c.time_ns))
        .max()
        .unwrap_or(t0)
        .max(t0 + 1_000_000);
    let span = (t1 - t0) as f64;
    let y = |t: u64| ((t.clamp(t0, t1) - t0) as f64 / span * PAGE_H_PX).round();
    let mut lanes: BTreeMap<Process, usize> = BTreeMap::new();
    for p in page.ops {
        lanes.entry(p.invoke.process).or_insert(0);
    }
    for (i, l) in lanes.values_mut().enumerate() {
        *l = i;
    }
    let axis_w = 70;
    let width = axis_w + lanes.len() * LANE_W_PX;
    let mut body = String::new();
    let _ = write!(
        body,
        "<h1>Timeline of <code>{}</code></h1>\n<p>Page {} of {}: operations {}&ndash;{} of {} in invoke order, {:.3}&ndash;{:.3} s since start. Hover an operation for its details.</p>\n",
        escape(run_id), page.n, page.pages, page.first + 1, page.first + page.ops.len(), page.total,
        t0 as f64 / 1e9, t1 as f64 / 1e9
    );
    if page.n == page.pages && page.first + page.ops.len() < page.total {
        let _ = writeln!(
            body,
            "<p class=\"warn\">Operations {}&ndash;{} are not paged here (limit {} pages of {}); they are all drawn in <a href=\"timeline.png\">timeline.png</a> and listed in <a href=\"history.jsonl\">history.jsonl</a>.</p>",
            page.first + page.ops.len() + 1, page.total, MAX_PAGES, OPS_PER_PAGE
        );
    }
    body.push_str(&nav(page));
    let here: Vec<String> = faults
        .iter()
        .filter(|w| w.start_ns <= t1 && w.end_ns.unwrap_or(end_ns) >= t0)
        .map(|w| {
            let end = w
                .end_ns
                .map_or("the end".to_owned(), |e| format!("{:.3} s", e as f64 / 1e9));
            escape(&format!(
                "{} {} ({:.3} s to {end})",
                w.id,
                w.label(),
                w.start_ns as f64 / 1e9
            ))
        })
        .collect();
    if !here.is_empty() {
        let _ = writeln!(body, "<p>Faults on this page: {}</p>", here.join("; "));
    }
    body.push_str("<p class=\"legend\"><span class=\"op ok\">ok</span> <span class=\"op fail\">fail</span> <span class=\"op info\">info</span> <span class=\"op open\">never completed</span> <span class=\"fault-key\">fault period</span></p>\n");
    let _ = writeln!(
        body,
        "<div class=\"tl\" style=\"width:{width}px;height:{}px\">",
        PAGE_H_PX + 30.0
    );
    for (p, lane) in &lanes {
        let _ = write!(
            body,
            "<div class=\"lane-head\" style=\"left:{}px\">process {}</div>",
            axis_w + lane * LANE_W_PX,
            escape(&p.to_string())
        );
    }
    let ticks = 12;
    for i in 0..=ticks {
        let t = t0 + (t1 - t0) * i / ticks;
        let _ = write!(
            body,
            "<div class=\"tick\" style=\"top:{}px\">{:.2} s</div>",
            30.0 + y(t),
            t as f64 / 1e9
        );
    }
    for w in faults {
        let (s, e) = (w.start_ns, w.end_ns.unwrap_or(end_ns));
        if e < t0 || s > t1 {
            continue;
        }
        let top = y(s);
        let _ = writeln!(
            body,
            "<div class=\"fault\" style=\"top:{}px;height:{}px;left:{axis_w}px;width:{}px\" title=\"{}\">{}</div>",
            30.0 + top,
            (y(e) - top).max(2.0),
            width - axis_w,
            escape(&format!("{} {} from {:.3} s to {}", w.id, w.label(), s as f64 / 1e9,
                w.end_ns.map_or("the end".into(), |e| format!("{:.3} s", e as f64 / 1e9)))),
            escape(&format!("{} {}", w.id, w.label()))
        );
    }
    for p in page.ops {
        let top = y(p.invoke.time_ns);
        let bottom = y(p.completion.map_or(t1, |c| c.time_ns));
        let h = (bottom - top).max(3.0);
        let label = if h >= 14.0 {
            escape(p.invoke.f.as_str())
        } else {
            String::new()
        };
        let _ = writeln!(
            body,
            "<div class=\"op {}\" style=\"top:{}px;height:{}px;left:{}px\" title=\"{}\">{label}</div>",
            class(p.outcome()),
            30.0 + top,
            h,
            axis_w + lanes[&p.invoke.process] * LANE_W_PX + 4,
            escape(&tooltip(p))
        );
    }
    body.push_str("</div>\n");
    body.push_str(&nav(page));
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>timeline {} of {} &middot; {}</title>\n<style>{}</style></head><body>\n{body}</body></html>\n",
        page.n, page.pages, escape(run_id), STYLE
    )
}

const STYLE: &str = "body{font-family:sans-serif;margin:1.5em;color:#222}\
nav{margin:.6em 0;line-height:1.6}\
.tl{position:relative;border:1px solid #ccc;background:#fff}\
.lane-head{position:absolute;top:4px;width:88px;font-size:12px;text-align:center;color:#333}\
.tick{position:absolute;left:2px;font-size:11px;color:#555;border-top:1px solid #ddd;width:64px}\
.fault{position:absolute;background:rgba(255,170,60,.25);border-top:1px solid #e08a00;font-size:11px;color:#8a4b00;overflow:hidden}\
.op{position:absolute;width:86px;font-size:10px;overflow:hidden;border-radius:2px;color:#fff;padding-left:2px;box-sizing:border-box}\
.legend .op{position:static;display:inline-block;padding:0 .4em;width:auto}\
.fault-key{background:rgba(255,170,60,.35);padding:0 .4em}\
.ok{background:#1e8c3c}.fail{background:#c82828}.info{background:#e69600}.open{background:#828282}\
.warn{background:#fff3c4;padding:.4em}";

/// Writes every page into `dir`; returns the page file names.
pub fn write_pages(
    dir: &Path,
    pairs: &[Pair<'_>],
    faults: &[FaultWindow],
    end_ns: u64,
    run_id: &str,
) -> std::io::Result<Vec<String>> {
    let pages = pairs.len().div_ceil(OPS_PER_PAGE).clamp(1, MAX_PAGES);
    let mut names = Vec::with_capacity(pages);
    for n in 1..=pages {
        let first = (n - 1) * OPS_PER_PAGE;
        let ops = &pairs[first.min(pairs.len())..(first + OPS_PER_PAGE).min(pairs.len())];
        let page = Page {
            n,
            pages,
            first,
            ops,
            total: pairs.len(),
        };
        let name = page_file(n);
        std::fs::write(dir.join(&name), render(&page, faults, end_ns, run_id))?;
        names.push(name);
    }
    // Pages of an earlier, longer analysis of this run would point nowhere useful.
    for n in pages + 1..=MAX_PAGES {
        let stale = dir.join(page_file(n));
        if !stale.exists() {
            break;
        }
        std::fs::remove_file(stale)?;
    }
    Ok(names)
}
