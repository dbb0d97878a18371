//! PNG graphs drawn with plotters and a bundled font, so no system font library is needed.

use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;

use crate::analysis::{FaultWindow, Throughput};

/// DejaVu Sans, bundled (license in `assets/DejaVuSans.LICENSE`).
static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
/// The family name graphs ask plotters for.
const FAMILY: &str = "sans-serif";

/// Graph size in pixels.
pub const WIDTH: u32 = 1000;
/// Graph size in pixels.
pub const HEIGHT: u32 = 420;

/// Fault shading colours, cycled per fault.
const FAULT_COLOURS: [RGBColor; 4] = [
    RGBColor(255, 200, 120),
    RGBColor(180, 200, 255),
    RGBColor(200, 240, 180),
    RGBColor(240, 180, 220),
];

/// Why a graph could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("drawing {path}: {message}")]
pub struct DrawError {
    /// The PNG being written.
    pub path: String,
    /// What plotters said.
    pub message: String,
}

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The font is compiled in; failing to parse it is a build defect, not an operating error.
        plotters::style::register_font(FAMILY, FontStyle::Normal, FONT)
            .unwrap_or_else(|_| panic!("bundled font does not parse"));
    });
}

fn err(path: &Path, e: impl std::fmt::Display) -> DrawError {
    DrawError {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// Draws completions per second by outcome, with fault windows shaded and named.
pub fn throughput(
    path: &Path,
    title: &str,
    t: &Throughput,
    faults: &[FaultWindow],
) -> Result<(), DrawError> {
    register_font();
    let root = BitMapBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(path, e))?;
    let x_max = (t.seconds().max(1)) as f64;
    let y_max = (t.peak().max(1) as f64 * 1.15).ceil();
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FAMILY, 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(0f64..x_max, 0f64..y_max)
        .map_err(|e| err(path, e))?;
    chart
        .configure_mesh()
        .x_desc("time since start (s)")
        .y_desc("operations completed per second (ops/s)")
        .label_style((FAMILY, 14))
        .axis_desc_style((FAMILY, 15))
        .draw()
        .map_err(|e| err(path, e))?;

    for (i, w) in faults.iter().enumerate() {
        let colour = FAULT_COLOURS[i % FAULT_COLOURS.len()];
        let start = w.start_ns as f64 / 1e9;
        let end = w.end_ns.map(|n| n as f64 / 1e9).unwrap_or(x_max);
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(start, 0.0), (end, y_max)],
                colour.mix(0.45).filled(),
            )))
            .map_err(|e| err(path, e))?
            .label(format!("fault: {}", w.label()))
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 16, y + 6)], colour.filled()));
    }

    let series: [(&str, &Vec<u64>, RGBColor); 3] = [
        ("ok", &t.ok, RGBColor(30, 140, 60)),
        ("fail", &t.fail, RGBColor(200, 40, 40)),
        ("info (indeterminate)", &t.info, RGBColor(230, 150, 0)),
    ];
    for (name, data, colour) in series {
        chart
            .draw_series(LineSeries::new(
                data.iter()
                    .enumerate()
                    .map(|(s, n)| (s as f64 + 0.5, *n as f64)),
                colour.stroke_width(2),
            ))
            .map_err(|e| err(path, e))?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], colour.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FAMILY, 14))
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(|e| err(path, e))?;
    root.present().map_err(|e| err(path, e))?;
    Ok(())
}
