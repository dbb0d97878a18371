//! `alerts.png`: the alert timeline over the fault bands. One lane per alert (name and labels);
//! a thick bar where the checker's evaluation of `alerts.yml` over `metrics.csv` fired it, a thin
//! bar beneath where the run's Prometheus fired it.

use std::path::Path;

use plotters::prelude::*;

use super::png::{self, err, DrawError, Entry, Mark, FAMILY, WIDTH};
use crate::analysis::FaultWindow;
use crate::checks::alerts::{short_name, Details, Span};

/// Height of one alert lane, pixels.
const LANE_PX: u32 = 34;

/// Size of `alerts.png` for `lanes` alerts.
pub fn size(lanes: usize) -> (u32, u32) {
    (WIDTH, 200 + LANE_PX * lanes.max(1) as u32)
}

/// The lanes: every alert either side fired, in order of first firing.
pub fn lanes(d: &Details) -> Vec<String> {
    let mut out: Vec<(f64, String)> = Vec::new();
    for s in d.ours.iter().chain(&d.prometheus) {
        let name = short_name(s);
        match out.iter_mut().find(|(_, n)| *n == name) {
            Some(slot) => slot.0 = slot.0.min(s.from_s),
            None => out.push((s.from_s, name)),
        }
    }
    out.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    out.into_iter().map(|(_, n)| n).collect()
}

/// Draws the timeline; `d` is `None` when the check could not evaluate.
pub fn draw(
    path: &Path,
    d: Option<&Details>,
    faults: &[FaultWindow],
    end_s: f64,
) -> Result<(u32, u32), DrawError> {
    let names = d.map(lanes).unwrap_or_default();
    let dims = size(names.len());
    let root = BitMapBackend::new(path, dims).into_drawing_area();
    let (plot, side) = png::frame(&root, "Alerts over the fault bands", path)?;
    let x_max = end_s.max(1.0);
    let y_max = names.len().max(1) as f64;
    let mut chart = ChartBuilder::on(&plot)
        .margin(8)
        .x_label_area_size(40)
        .y_label_area_size(260)
        .build_cartesian_2d(0f64..x_max, 0f64..y_max)
        .map_err(|e| err(path, e))?;
    let label_of = |y: &f64| {
        let i = y.floor() as usize;
        names
            .len()
            .checked_sub(i + 1)
            .and_then(|k| names.get(k))
            .map(|n| png::truncate(n, 40))
            .unwrap_or_default()
    };
    chart
        .configure_mesh()
        .x_desc("time since start (s)")
        .x_label_formatter(&png::fmt_s)
        .y_labels(names.len().max(1) * 2 + 1)
        .y_label_formatter(&|y: &f64| {
            if (y.fract() - 0.5).abs() < 0.01 {
                label_of(y)
            } else {
                String::new()
            }
        })
        .disable_y_mesh()
        .label_style((FAMILY, 12))
        .axis_desc_style((FAMILY, 13))
        .draw()
        .map_err(|e| err(path, e))?;
    png::shade_faults(&mut chart, faults, x_max, (0.0, y_max), path)?;
    if let Some(d) = d {
        let lane = |s: &Span| {
            let name = short_name(s);
            names
                .iter()
                .position(|n| *n == name)
                .map(|i| (names.len() - 1 - i) as f64)
        };
        for (spans, lo, hi, colour) in [
            (&d.ours, 0.45, 0.85, png::FAIL),
            (&d.prometheus, 0.2, 0.35, png::THRESHOLD),
        ] {
            let bars = spans.iter().filter_map(|s| {
                let y = lane(s)?;
                let to = if s.to_s - s.from_s < x_max / 400.0 {
                    s.from_s + x_max / 400.0
                } else {
                    s.to_s
                };
                Some(Rectangle::new(
                    [(s.from_s, y + lo), (to, y + hi)],
                    colour.filled(),
                ))
            });
            chart.draw_series(bars).map_err(|e| err(path, e))?;
        }
    }
    if names.is_empty() {
        let (w, h) = plot.dim_in_pixel();
        let note = if d.is_some() {
            "no alert fired"
        } else {
            "the rules could not be evaluated (see the alerts check)"
        };
        plot.draw(&Text::new(
            note.to_owned(),
            (w as i32 / 2 - 80, h as i32 / 2),
            (FAMILY, 15).into_font().color(&png::OPEN),
        ))
        .map_err(|e| err(path, e))?;
    }
    let mut entries = vec![
        Entry::new(Mark::Line(png::FAIL), "fired (checker, metrics.csv)"),
        Entry::new(Mark::Line(png::THRESHOLD), "fired (the run's Prometheus)"),
    ];
    entries.extend(png::fault_entries(faults));
    png::legend(&side, "legend", &entries, path)?;
    root.present().map_err(|e| err(path, e))?;
    Ok(dims)
}
