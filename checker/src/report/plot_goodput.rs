//! `goodput.png`: payment's goodput (charges answered 2xx per second) over time, one line per
//! run (the retry-storm pair: with and without the budget), the fault bands, each run's
//! baseline share that counts as recovered (dotted), and its recovery point after each heal;
//! a run that never recovered is marked so (metastable when the workload ran on long enough).

use std::path::Path;

use plotters::prelude::*;

use super::png::{self, err, DrawError, Entry, Mark, FAMILY, WIDTH};
use crate::analysis::FaultWindow;
use crate::checks::retry_load::storm::Goodput;

/// Size of `goodput.png`.
pub const GOODPUT_SIZE: (u32, u32) = (WIDTH, 520);

/// One run's goodput, labelled.
pub struct GoodputRun<'a> {
    /// Legend label of the run.
    pub label: String,
    /// Its goodput and recovery.
    pub goodput: Option<&'a Goodput>,
}

/// Draws every run's goodput on one panel (the first solid, the others dashed).
pub fn draw(
    path: &Path,
    runs: &[GoodputRun<'_>],
    recovered_fraction: f64,
    faults: &[FaultWindow],
    end_s: f64,
) -> Result<(), DrawError> {
    let root = BitMapBackend::new(path, GOODPUT_SIZE).into_drawing_area();
    let title = if runs.len() > 1 {
        "Payment goodput after the storm: runs compared"
    } else {
        "Payment goodput"
    };
    let (plot, side) = png::frame(&root, title, path)?;
    let x_max = end_s.max(1.0);
    let peak = runs
        .iter()
        .filter_map(|r| r.goodput)
        .flat_map(|g| g.per_s.iter().copied())
        .fold(0.0f64, f64::max);
    let y_max = png::y_top(peak, 1.0);
    let mut chart = ChartBuilder::on(&plot)
        .margin(8)
        .x_label_area_size(40)
        .y_label_area_size(72)
        .build_cartesian_2d(0f64..x_max, 0f64..y_max)
        .map_err(|e| err(path, e))?;
    chart
        .configure_mesh()
        .y_desc("charges answered 2xx / s")
        .x_desc("time since start (s)")
        .x_label_formatter(&png::fmt_s)
        .y_label_formatter(&png::fmt_num)
        .label_style((FAMILY, 12))
        .axis_desc_style((FAMILY, 13))
        .draw()
        .map_err(|e| err(path, e))?;
    png::shade_faults(&mut chart, faults, x_max, (0.0, y_max), path)?;
    let mut entries = Vec::new();
    for (r, run) in runs.iter().enumerate() {
        let c = png::SERIES[r % png::SERIES.len()];
        let Some(g) = run.goodput else {
            entries.push(Entry::new(
                Mark::Box(WHITE),
                format!("{}: no goodput series", run.label),
            ));
            continue;
        };
        let pts: Vec<(f64, f64)> = g
            .per_s
            .iter()
            .enumerate()
            .take(g.workload_end_s.max(1))
            .skip(1)
            .map(|(s, v)| (s as f64 + 0.5, *v))
            .collect();
        if r == 0 {
            chart
                .draw_series(LineSeries::new(pts, c.stroke_width(2)))
                .map_err(|e| err(path, e))?;
        } else {
            chart
                .draw_series(DashedLineSeries::new(pts, 6, 4, c.stroke_width(2)))
                .map_err(|e| err(path, e))?;
        }
        if let Some(b) = g.baseline_per_s {
            let y = b * recovered_fraction;
            chart
                .draw_series(DashedLineSeries::new(
                    [(0.0, y), (x_max, y)],
                    2,
                    4,
                    c.mix(0.7).stroke_width(1),
                ))
                .map_err(|e| err(path, e))?;
        }
        let mut text = format!("{}:", run.label);
        for rec in &g.recovery {
            match rec.recovery_s {
                Some(after) => {
                    let x = rec.healed_s + after;
                    let y = g.baseline_per_s.unwrap_or(0.0) * recovered_fraction;
                    chart
                        .draw_series(std::iter::once(Circle::new((x, y), 6, c.filled())))
                        .map_err(|e| err(path, e))?;
                    text.push_str(&format!(" back {after:.1} s after the heal"));
                }
                None => {
                    let note = if g.metastable {
                        "never back: metastable"
                    } else {
                        "not back before the end"
                    };
                    chart
                        .draw_series(std::iter::once(Text::new(
                            note.to_owned(),
                            (rec.healed_s + 0.5, y_max * (0.9 - 0.08 * r as f64)),
                            (FAMILY, 14).into_font().color(&c),
                        )))
                        .map_err(|e| err(path, e))?;
                    text.push_str(&format!(" {note}"));
                }
            }
        }
        let mark = if r == 0 {
            Mark::Line(c)
        } else {
            Mark::Dashed(c)
        };
        entries.push(Entry::new(mark, text));
    }
    entries.push(Entry::new(
        Mark::Dashed(RGBColor(120, 120, 120)),
        format!(
            "dotted: {:.0}% of each run's baseline",
            recovered_fraction * 100.0
        ),
    ));
    entries.extend(png::fault_entries(faults));
    png::legend(&side, "run / fault", &entries, path)?;
    root.present().map_err(|e| err(path, e))
}
