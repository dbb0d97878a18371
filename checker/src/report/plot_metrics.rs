//! Graphs of `metrics.csv`: retry load per downstream and the seam-signals dashboard.

use std::collections::BTreeMap;
use std::path::Path;

use plotters::prelude::*;

use super::png::{self, err, DrawError, Entry, Mark, FAMILY, WIDTH};
use crate::analysis::seams::{RetryLoad, Signal};
use crate::analysis::FaultWindow;

/// Size of `retry-load.png`.
pub const RETRY_SIZE: (u32, u32) = (WIDTH, 900);
/// Size of `signals.png`.
pub const SIGNALS_SIZE: (u32, u32) = (WIDTH, 1500);

/// One run's retry load, labelled (e.g. `with budget`).
pub struct RetryRun<'a> {
    /// Legend label of the run.
    pub label: String,
    /// Its per-downstream series.
    pub loads: &'a [RetryLoad],
}

use super::png::Area;

/// A panel with a linear y axis; returns the chart for drawing series.
fn panel<'a, 'b>(
    area: &'a Area<'b>,
    caption: &str,
    y_desc: &str,
    x_max: f64,
    y_max: f64,
    bottom: bool,
    path: &Path,
) -> Result<
    ChartContext<
        'a,
        BitMapBackend<'b>,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
    DrawError,
> {
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FAMILY, 16))
        .margin(8)
        .x_label_area_size(if bottom { 40 } else { 22 })
        .y_label_area_size(72)
        .build_cartesian_2d(0f64..x_max, 0f64..y_max)
        .map_err(|e| err(path, e))?;
    let mut mesh = chart.configure_mesh();
    mesh.y_desc(y_desc)
        .x_label_formatter(&png::fmt_s)
        .y_label_formatter(&png::fmt_num)
        .y_labels(5)
        .label_style((FAMILY, 12))
        .axis_desc_style((FAMILY, 13));
    if bottom {
        mesh.x_desc("time since start (s)");
    }
    mesh.draw().map_err(|e| err(path, e))?;
    Ok(chart)
}

fn no_data(area: &Area<'_>, note: &str, path: &Path) -> Result<(), DrawError> {
    let (w, h) = area.dim_in_pixel();
    area.draw(&Text::new(
        note.to_owned(),
        (w as i32 / 2 - 100, h as i32 / 2),
        (FAMILY, 15).into_font().color(&RGBColor(120, 120, 120)),
    ))
    .map_err(|e| err(path, e))
}

/// First attempts, retries and budget-refused retries per second, one panel each, one line
/// per downstream; a second run is drawn dashed on the same panels.
pub fn retry_load(
    path: &Path,
    runs: &[RetryRun<'_>],
    faults: &[FaultWindow],
    end_s: f64,
) -> Result<(), DrawError> {
    let root = BitMapBackend::new(path, RETRY_SIZE).into_drawing_area();
    let title = if runs.len() > 1 {
        "Retry load per downstream: runs compared (solid vs dashed)"
    } else {
        "Retry load per downstream"
    };
    let (plot, side) = png::frame(&root, title, path)?;
    let panels = plot.split_evenly((3, 1));
    let x_max = end_s.max(1.0);
    let mut colours: BTreeMap<&str, RGBColor> = BTreeMap::new();
    for run in runs {
        for l in run.loads {
            let next = png::SERIES[colours.len() % png::SERIES.len()];
            colours.entry(l.downstream.as_str()).or_insert(next);
        }
    }
    type Pick = fn(&RetryLoad) -> &Vec<f64>;
    let kinds: [(&str, &str, Pick); 3] = [
        ("First attempts (logical requests)", "requests/s", |l| {
            &l.first_attempts
        }),
        ("Retries", "retries/s", |l| &l.retries),
        ("Retries refused by the budget", "refused/s", |l| &l.refused),
    ];
    for (i, (caption, unit, pick)) in kinds.iter().enumerate() {
        let area = &panels[i];
        let peak = runs
            .iter()
            .flat_map(|r| r.loads.iter())
            .flat_map(|l| pick(l).iter().copied())
            .fold(0.0f64, f64::max);
        let y_max = png::y_top(peak, 1.0);
        let mut chart = panel(area, caption, unit, x_max, y_max, i == 2, path)?;
        png::shade_faults(&mut chart, faults, x_max, (0.0, y_max), path)?;
        for (r, run) in runs.iter().enumerate() {
            for l in run.loads {
                let c = colours[l.downstream.as_str()];
                let pts = pick(l)
                    .iter()
                    .enumerate()
                    .skip(l.from_s)
                    .map(|(s, v)| (s as f64 + 0.5, *v));
                if r == 0 {
                    chart
                        .draw_series(LineSeries::new(pts, c.stroke_width(2)))
                        .map_err(|e| err(path, e))?;
                } else {
                    chart
                        .draw_series(DashedLineSeries::new(pts, 6, 4, c.stroke_width(2)))
                        .map_err(|e| err(path, e))?;
                }
            }
        }
        if runs.iter().all(|r| r.loads.is_empty()) {
            no_data(area, "no retry counters in metrics.csv", path)?;
        }
    }
    let mut entries = Vec::new();
    for (r, run) in runs.iter().enumerate() {
        if runs.len() > 1 {
            let style = if r == 0 { "solid" } else { "dashed" };
            entries.push(Entry::new(
                Mark::Box(WHITE),
                format!("{style}: {}", run.label),
            ));
        }
        for l in run.loads {
            let c = colours[l.downstream.as_str()];
            let mark = if r == 0 {
                Mark::Line(c)
            } else {
                Mark::Dashed(c)
            };
            let total = |v: &[f64]| v.iter().sum::<f64>();
            entries.push(Entry::new(
                mark,
                format!(
                    "{}: {:.0} req, {:.0} retries, {:.0} refused",
                    l.downstream,
                    total(&l.first_attempts),
                    total(&l.retries),
                    total(&l.refused)
                ),
            ));
        }
    }
    entries.extend(png::fault_entries(faults));
    png::legend(&side, "downstream / fault", &entries, path)?;
    root.present().map_err(|e| err(path, e))
}

fn token_colour(d: usize) -> RGBColor {
    png::SERIES[(d + 2) % png::SERIES.len()]
}

/// Contiguous runs of sampled seconds, so gaps in the data show as gaps in the line.
fn segments(values: &[Option<f64>]) -> Vec<Vec<(f64, f64)>> {
    let mut out: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut cur: Vec<(f64, f64)> = Vec::new();
    for (s, v) in values.iter().enumerate() {
        match v {
            Some(v) if v.is_finite() => cur.push((s as f64 + 0.5, *v)),
            _ => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn draw_values(
    chart: &mut ChartContext<
        '_,
        BitMapBackend<'_>,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
    values: &[Option<f64>],
    colour: RGBColor,
    path: &Path,
) -> Result<(), DrawError> {
    for seg in segments(values) {
        if seg.len() == 1 {
            chart
                .draw_series(std::iter::once(Circle::new(seg[0], 3, colour.filled())))
                .map_err(|e| err(path, e))?;
        } else {
            chart
                .draw_series(LineSeries::new(seg, colour.stroke_width(2)))
                .map_err(|e| err(path, e))?;
        }
    }
    Ok(())
}

/// The seam-signals dashboard: one panel per signal on a shared time axis, each with its
/// threshold dashed; the leader panel shows the lease token per domain with elections marked.
pub fn signals(
    path: &Path,
    signals: &[Signal],
    tokens: &BTreeMap<String, Vec<Option<f64>>>,
    faults: &[FaultWindow],
    end_s: f64,
    missing_note: &str,
) -> Result<(), DrawError> {
    let root = BitMapBackend::new(path, SIGNALS_SIZE).into_drawing_area();
    let (plot, side) = png::frame(&root, "Seam signals (dashed: threshold)", path)?;
    let panels = plot.split_evenly((signals.len().max(1), 1));
    let x_max = end_s.max(1.0);
    let last = signals.len().saturating_sub(1);
    for (i, s) in signals.iter().enumerate() {
        let area = &panels[i];
        // Seconds read better as milliseconds on a latency panel.
        let (scale, unit) = if s.unit == "s" {
            (1000.0, "ms")
        } else {
            (1.0, s.unit)
        };
        let scaled: Vec<Option<f64>> = s.values.iter().map(|v| v.map(|v| v * scale)).collect();
        let threshold = s.threshold.map(|t| t * scale);
        let is_leader = s.key == "leader_churn" && !tokens.is_empty();
        let peak = if is_leader {
            tokens
                .values()
                .flatten()
                .flatten()
                .copied()
                .fold(0.0f64, f64::max)
        } else {
            scaled
                .iter()
                .flatten()
                .copied()
                .chain(threshold)
                .fold(0.0f64, f64::max)
        };
        let y_max = png::y_top(peak, 1.0);
        let (caption, unit) = if is_leader {
            (
                "leader term (lease token) and elections (red ticks)".to_owned(),
                "token",
            )
        } else {
            (format!("{} ({unit})", s.title), unit)
        };
        let mut chart = panel(area, &caption, unit, x_max, y_max, i == last, path)?;
        png::shade_faults(&mut chart, faults, x_max, (0.0, y_max), path)?;
        if !s.present() && !is_leader {
            no_data(area, missing_note, path)?;
            continue;
        }
        if is_leader {
            for (d, values) in tokens.values().enumerate() {
                draw_values(&mut chart, values, token_colour(d), path)?;
            }
            let ticks = s
                .values
                .iter()
                .enumerate()
                .filter(|(_, v)| v.is_some_and(|v| v > 0.0));
            chart
                .draw_series(ticks.map(|(sec, _)| {
                    let x = sec as f64 + 0.5;
                    PathElement::new(vec![(x, 0.0), (x, y_max * 0.25)], png::FAIL.stroke_width(3))
                }))
                .map_err(|e| err(path, e))?;
        } else {
            draw_values(&mut chart, &scaled, png::SERIES[0], path)?;
            if let Some(t) = threshold {
                chart
                    .draw_series(DashedLineSeries::new(
                        [(0.0, t), (x_max, t)],
                        8,
                        5,
                        png::THRESHOLD.stroke_width(2),
                    ))
                    .map_err(|e| err(path, e))?;
            }
        }
    }
    let mut entries = vec![
        Entry::new(Mark::Line(png::SERIES[0]), "signal value"),
        Entry::new(Mark::Dashed(png::THRESHOLD), "threshold (moved above it)"),
        Entry::new(Mark::Line(png::FAIL), "leader election"),
    ];
    for (d, domain) in tokens.keys().enumerate() {
        entries.push(Entry::new(
            Mark::Line(token_colour(d)),
            format!("token, domain {domain}"),
        ));
    }
    entries.extend(png::fault_entries(faults));
    png::legend(&side, "legend", &entries, path)?;
    root.present().map_err(|e| err(path, e))
}
