//! Graphs of the history: throughput by outcome, every operation's latency, and the timeline of
//! operations per process.

use std::collections::BTreeMap;
use std::path::Path;

use plotters::prelude::*;

use super::png::{self, err, DrawError, Entry, Mark, FAMILY, WIDTH};
use crate::analysis::{FaultWindow, Outcome, Pair, Throughput};
use formats::history::Process;

/// Size of `throughput.png`.
pub const THROUGHPUT_SIZE: (u32, u32) = (WIDTH, 460);
/// Size of `latency.png`.
pub const LATENCY_SIZE: (u32, u32) = (WIDTH, 520);
/// Most process lanes drawn in `timeline.png`; more processes share lanes (noted in the title).
pub const MAX_TIMELINE_LANES: usize = 160;

/// Height of `timeline.png` for `processes` client processes.
pub fn timeline_height(processes: usize) -> u32 {
    let lanes = processes.clamp(1, MAX_TIMELINE_LANES) as u32;
    (140 + lanes * 12).clamp(420, 2200)
}

fn outcome_colour(o: Outcome) -> RGBColor {
    match o {
        Outcome::Ok => png::OK,
        Outcome::Fail => png::FAIL,
        Outcome::Info => png::INFO,
        Outcome::Open => png::OPEN,
    }
}

/// Completions per second by outcome, with fault windows shaded and named.
pub fn throughput(
    path: &Path,
    title: &str,
    t: &Throughput,
    faults: &[FaultWindow],
) -> Result<(), DrawError> {
    let root = BitMapBackend::new(path, THROUGHPUT_SIZE).into_drawing_area();
    let (plot, side) = png::frame(&root, title, path)?;
    let x_max = t.seconds().max(1) as f64;
    let y_max = png::y_top(t.peak() as f64, 1.0);
    let mut chart = ChartBuilder::on(&plot)
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..x_max, 0f64..y_max)
        .map_err(|e| err(path, e))?;
    chart
        .configure_mesh()
        .x_desc("time since start (s)")
        .y_desc("operations completed (ops/s)")
        .x_label_formatter(&png::fmt_s)
        .y_label_formatter(&png::fmt_num)
        .label_style((FAMILY, 13))
        .axis_desc_style((FAMILY, 14))
        .draw()
        .map_err(|e| err(path, e))?;
    png::shade_faults(&mut chart, faults, x_max, (0.0, y_max), path)?;
    let total = |v: &[u64]| v.iter().sum::<u64>();
    let series: [(String, &Vec<u64>, RGBColor); 3] = [
        (format!("ok ({})", total(&t.ok)), &t.ok, png::OK),
        (format!("fail ({})", total(&t.fail)), &t.fail, png::FAIL),
        (format!("info ({})", total(&t.info)), &t.info, png::INFO),
    ];
    let mut entries = Vec::new();
    for (name, data, colour) in series {
        chart
            .draw_series(LineSeries::new(
                data.iter()
                    .enumerate()
                    .map(|(s, n)| (s as f64 + 0.5, *n as f64)),
                colour.stroke_width(2),
            ))
            .map_err(|e| err(path, e))?;
        entries.push(Entry::new(Mark::Line(colour), name));
    }
    entries.extend(png::fault_entries(faults));
    png::legend(&side, "outcome (total) / fault", &entries, path)?;
    root.present().map_err(|e| err(path, e))
}

/// Every completed operation's latency against its completion time, coloured by outcome, on a
/// log scale.
pub fn latency(
    path: &Path,
    pairs: &[Pair<'_>],
    faults: &[FaultWindow],
    end_s: f64,
) -> Result<(), DrawError> {
    let root = BitMapBackend::new(path, LATENCY_SIZE).into_drawing_area();
    let (plot, side) = png::frame(&root, "Latency of every client operation, by outcome", path)?;
    let points: Vec<(f64, f64, Outcome)> = pairs
        .iter()
        .filter_map(|p| {
            let c = p.completion?;
            let ms = p.latency_ns()? as f64 / 1e6;
            Some((c.time_ns as f64 / 1e9, ms.max(0.01), p.outcome()))
        })
        .collect();
    let max_ms = points.iter().map(|p| p.1).fold(1.0f64, f64::max);
    let min_ms = points.iter().map(|p| p.1).fold(max_ms, f64::min);
    let lo = 10f64.powf(min_ms.log10().floor()).min(0.1);
    let hi = 10f64.powf(max_ms.log10().ceil()).max(lo * 100.0);
    let x_max = end_s.max(1.0);
    let mut chart = ChartBuilder::on(&plot)
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(72)
        .build_cartesian_2d(0f64..x_max, (lo..hi).log_scale())
        .map_err(|e| err(path, e))?;
    chart
        .configure_mesh()
        .x_desc("completion time since start (s)")
        .y_desc("latency (ms, log scale)")
        .x_label_formatter(&png::fmt_s)
        .y_label_formatter(&png::fmt_num)
        .label_style((FAMILY, 13))
        .axis_desc_style((FAMILY, 14))
        .draw()
        .map_err(|e| err(path, e))?;
    png::shade_faults(&mut chart, faults, x_max, (lo, hi), path)?;
    let mut entries = Vec::new();
    for outcome in [Outcome::Ok, Outcome::Fail, Outcome::Info] {
        let colour = outcome_colour(outcome);
        let mine: Vec<(f64, f64)> = points
            .iter()
            .filter(|p| p.2 == outcome)
            .map(|p| (p.0, p.1))
            .collect();
        chart
            .draw_series(
                mine.iter()
                    .map(|&(x, y)| Circle::new((x, y), 2, colour.filled())),
            )
            .map_err(|e| err(path, e))?;
        entries.push(Entry::new(
            Mark::Dot(colour),
            format!("{} ({})", outcome.as_str(), mine.len()),
        ));
    }
    entries.extend(png::fault_entries(faults));
    png::legend(&side, "outcome (count) / fault", &entries, path)?;
    root.present().map_err(|e| err(path, e))
}

/// One bar per operation from invoke to completion on its process's lane, coloured by outcome,
/// open operations grey to the end. Every operation is drawn; with more processes than
/// [`MAX_TIMELINE_LANES`], processes share lanes round-robin and the title says so.
pub fn timeline(
    path: &Path,
    pairs: &[Pair<'_>],
    faults: &[FaultWindow],
    end_s: f64,
) -> Result<(), DrawError> {
    let mut lanes: BTreeMap<Process, usize> = pairs.iter().map(|p| (p.invoke.process, 0)).collect();
    let processes = lanes.len();
    // Lanes in process order; past the lane limit processes share lanes round-robin.
    for (i, lane) in lanes.values_mut().enumerate() {
        *lane = i % MAX_TIMELINE_LANES;
    }
    let lane_count = processes.clamp(1, MAX_TIMELINE_LANES);
    let size = (WIDTH, timeline_height(processes));
    let root = BitMapBackend::new(path, size).into_drawing_area();
    let shared = if processes > MAX_TIMELINE_LANES {
        format!(" on {MAX_TIMELINE_LANES} shared lanes")
    } else {
        String::new()
    };
    let title = format!(
        "Operations per process over time ({} operations, {processes} processes{shared})",
        pairs.len()
    );
    let (plot, side) = png::frame(&root, &title, path)?;
    let x_max = end_s.max(1.0);
    // Lane i is centred on y = i, so integer ticks name lanes.
    let (y_lo, y_hi) = (-0.5, lane_count as f64 - 0.5);
    let mut chart = ChartBuilder::on(&plot)
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..x_max, y_lo..y_hi)
        .map_err(|e| err(path, e))?;
    let mut names: Vec<String> = vec![String::new(); lane_count];
    for (p, lane) in &lanes {
        if names[*lane].is_empty() {
            names[*lane] = p.to_string();
        } else if !names[*lane].ends_with('+') {
            names[*lane].push('+');
        }
    }
    let lane_label = |v: &f64| {
        let i = v.round();
        if (v - i).abs() > 1e-6 || i < 0.0 {
            return String::new();
        }
        names.get(i as usize).cloned().unwrap_or_default()
    };
    chart
        .configure_mesh()
        .x_desc("time since start (s)")
        .y_desc(if shared.is_empty() {
            "client process"
        } else {
            "client process (n+ = lane shared with later processes)"
        })
        .x_label_formatter(&png::fmt_s)
        .y_label_formatter(&lane_label)
        .y_labels(lane_count.min(30) * 2 + 1)
        .disable_y_mesh()
        .label_style((FAMILY, 12))
        .axis_desc_style((FAMILY, 14))
        .draw()
        .map_err(|e| err(path, e))?;
    png::shade_faults(&mut chart, faults, x_max, (y_lo, y_hi), path)?;
    let min_w = x_max / 1500.0;
    let mut counts: BTreeMap<Outcome, usize> = BTreeMap::new();
    for outcome in [Outcome::Ok, Outcome::Fail, Outcome::Info, Outcome::Open] {
        let colour = outcome_colour(outcome);
        let bars = pairs.iter().filter(|p| p.outcome() == outcome).map(|p| {
            let lane = lanes[&p.invoke.process] as f64;
            let start = p.invoke.time_ns as f64 / 1e9;
            let end = p.completion.map_or(x_max, |c| c.time_ns as f64 / 1e9);
            let end = end.max(start + min_w);
            Rectangle::new([(start, lane - 0.35), (end, lane + 0.35)], colour.filled())
        });
        let n = pairs.iter().filter(|p| p.outcome() == outcome).count();
        counts.insert(outcome, n);
        chart.draw_series(bars).map_err(|e| err(path, e))?;
    }
    let mut entries: Vec<Entry> = counts
        .iter()
        .map(|(o, n)| {
            Entry::new(
                Mark::Box(outcome_colour(*o)),
                format!("{} ({n})", o.as_str()),
            )
        })
        .collect();
    entries.extend(png::fault_entries(faults));
    png::legend(&side, "outcome (count) / fault", &entries, path)?;
    root.present().map_err(|e| err(path, e))
}
