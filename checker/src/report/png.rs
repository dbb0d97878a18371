//! What every PNG graph shares: the bundled font, colours, the title, a legend in its own
//! column (so it never covers data), and fault periods shaded and named.
//!
//! Graphs are drawn with plotters and a bundled font, so no system font library is needed.

use std::path::Path;
use std::sync::Once;

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::analysis::FaultWindow;

/// DejaVu Sans, bundled (license in `assets/DejaVuSans.LICENSE`).
static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
/// The family name graphs ask plotters for.
pub const FAMILY: &str = "sans-serif";

/// Width of every graph in pixels.
pub const WIDTH: u32 = 1200;
/// Width of the legend column on the right.
pub const LEGEND_W: u32 = 270;

/// Outcome colours.
pub const OK: RGBColor = RGBColor(30, 140, 60);
/// Failed operations.
pub const FAIL: RGBColor = RGBColor(200, 40, 40);
/// Indeterminate operations.
pub const INFO: RGBColor = RGBColor(230, 150, 0);
/// Operations still open at the end.
pub const OPEN: RGBColor = RGBColor(130, 130, 130);
/// Threshold lines.
pub const THRESHOLD: RGBColor = RGBColor(120, 0, 160);

/// Line colours for series that are not outcomes, cycled.
pub const SERIES: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(23, 190, 207),
];

/// Fault shading colours, cycled per fault.
const FAULT_COLOURS: [RGBColor; 4] = [
    RGBColor(255, 200, 120),
    RGBColor(160, 190, 255),
    RGBColor(190, 235, 170),
    RGBColor(240, 170, 215),
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

/// Wraps a plotters error with the file being drawn.
pub fn err(path: &Path, e: impl std::fmt::Display) -> DrawError {
    DrawError {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// Registers the bundled font once per process.
pub fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The font is compiled in; failing to parse it is a build defect, not an operating error.
        plotters::style::register_font(FAMILY, FontStyle::Normal, FONT)
            .unwrap_or_else(|_| panic!("bundled font does not parse"));
    });
}

/// The shading colour of the `i`th fault.
pub fn fault_colour(i: usize) -> RGBColor {
    FAULT_COLOURS[i % FAULT_COLOURS.len()]
}

/// How a legend entry is marked.
#[derive(Debug, Clone, Copy)]
pub enum Mark {
    /// A line of this colour.
    Line(RGBColor),
    /// A dashed line.
    Dashed(RGBColor),
    /// A filled box (areas, fault bands).
    Box(RGBColor),
    /// A dot (scatter points).
    Dot(RGBColor),
}

/// One legend line.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The mark.
    pub mark: Mark,
    /// The text.
    pub text: String,
}

impl Entry {
    /// A legend entry.
    pub fn new(mark: Mark, text: impl Into<String>) -> Entry {
        Entry {
            mark,
            text: text.into(),
        }
    }
}

/// Legend entries for fault bands: `f1 pause n2/order, 5.0-10.0 s`.
pub fn fault_entries(faults: &[FaultWindow]) -> Vec<Entry> {
    faults
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let end = w
                .end_ns
                .map_or("end".to_owned(), |e| format!("{:.1}", e as f64 / 1e9));
            Entry::new(
                Mark::Box(fault_colour(i)),
                format!(
                    "{} {} ({:.1}-{end} s)",
                    w.id,
                    w.label(),
                    w.start_ns as f64 / 1e9
                ),
            )
        })
        .collect()
}

/// A drawing area of a bitmap graph.
pub type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// A blank white canvas with the title on top, split into the plot area and a legend column.
pub fn frame<'a>(
    root: &Area<'a>,
    title: &str,
    path: &Path,
) -> Result<(Area<'a>, Area<'a>), DrawError> {
    register_font();
    root.fill(&WHITE).map_err(|e| err(path, e))?;
    let body = root
        .titled(title, (FAMILY, 22).into_font().color(&BLACK))
        .map_err(|e| err(path, e))?;
    let (w, _) = body.dim_in_pixel();
    Ok(body.split_horizontally(w.saturating_sub(LEGEND_W)))
}

/// Draws a legend as a column of entries at the top of `area`. Entries that do not fit are
/// summarized in a last line, never silently dropped.
pub fn legend(
    area: &Area<'_>,
    heading: &str,
    entries: &[Entry],
    path: &Path,
) -> Result<(), DrawError> {
    let (_, h) = area.dim_in_pixel();
    let line_h = 17i32;
    let font = (FAMILY, 13).into_font().color(&BLACK);
    area.draw(&Text::new(
        heading.to_owned(),
        (8, 8),
        (FAMILY, 14).into_font().color(&BLACK),
    ))
    .map_err(|e| err(path, e))?;
    let bottom = h as i32 - line_h;
    let mut y = 34;
    for (i, entry) in entries.iter().enumerate() {
        let lines = wrap(&entry.text, LEGEND_CHARS, LEGEND_LINES);
        let needed = lines.len() as i32 * line_h + 4;
        let last = i + 1 == entries.len();
        if y + needed > bottom - if last { 0 } else { line_h } {
            area.draw(&Text::new(
                format!("... and {} more (see the report)", entries.len() - i),
                (8, y - 7),
                font.clone(),
            ))
            .map_err(|e| err(path, e))?;
            return Ok(());
        }
        mark(area, entry.mark, y, path)?;
        for (k, line) in lines.into_iter().enumerate() {
            area.draw(&Text::new(
                line,
                (36, y - 7 + k as i32 * line_h),
                font.clone(),
            ))
            .map_err(|e| err(path, e))?;
        }
        y += needed;
    }
    Ok(())
}

/// Characters per legend line.
const LEGEND_CHARS: usize = 32;
/// Most lines one legend entry may take.
const LEGEND_LINES: usize = 3;

fn mark(area: &Area<'_>, mark: Mark, y: i32, path: &Path) -> Result<(), DrawError> {
    let (x0, x1) = (8, 30);
    match mark {
        Mark::Line(c) => area.draw(&PathElement::new(vec![(x0, y), (x1, y)], c.stroke_width(3))),
        Mark::Dashed(c) => {
            for seg in 0..3 {
                let s = x0 + seg * 8;
                area.draw(&PathElement::new(
                    vec![(s, y), (s + 5, y)],
                    c.stroke_width(2),
                ))
                .map_err(|e| err(path, e))?;
            }
            Ok(())
        }
        Mark::Box(c) => area.draw(&Rectangle::new([(x0, y - 6), (x1, y + 6)], c.filled())),
        Mark::Dot(c) => area.draw(&Circle::new((x0 + 11, y), 4, c.filled())),
    }
    .map_err(|e| err(path, e))
}

/// Splits `text` into lines of at most `width` characters at spaces (or anywhere in a long
/// word), at most `max_lines`, the last one ending in an ellipsis if text was left over.
pub fn wrap(text: &str, width: usize, max_lines: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut cur = String::new();
    for word in text.split(' ') {
        let mut word = word.to_owned();
        loop {
            let extra = usize::from(!cur.is_empty());
            if cur.chars().count() + extra + word.chars().count() <= width {
                if !cur.is_empty() {
                    cur.push(' ');
                }
                cur.push_str(&word);
                break;
            }
            if cur.is_empty() {
                // A word longer than a line: cut it.
                let head: String = word.chars().take(width).collect();
                word = word.chars().skip(width).collect();
                lines.push(head);
            } else {
                lines.push(std::mem::take(&mut cur));
            }
        }
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    if lines.len() > max_lines {
        lines.truncate(max_lines);
        if let Some(last) = lines.last_mut() {
            let mut cut: String = last.chars().take(width.saturating_sub(1)).collect();
            cut.push('\u{2026}');
            *last = cut;
        }
    }
    lines
}

/// Shortens `text` to `max` characters with an ellipsis.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
    s.push('\u{2026}');
    s
}

/// Shades every fault window from `y_lo` to `y_hi` and writes its id at the top of the band.
pub fn shade_faults<Y>(
    chart: &mut ChartContext<'_, BitMapBackend<'_>, Cartesian2d<RangedCoordf64, Y>>,
    faults: &[FaultWindow],
    x_max: f64,
    (y_lo, y_hi): (f64, f64),
    path: &Path,
) -> Result<(), DrawError>
where
    Y: Ranged<ValueType = f64>,
{
    for (i, w) in faults.iter().enumerate() {
        let start = (w.start_ns as f64 / 1e9).min(x_max);
        let end = w.end_ns.map_or(x_max, |n| n as f64 / 1e9).min(x_max);
        let end = if end - start < x_max / 400.0 {
            start + x_max / 400.0
        } else {
            end
        };
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(start, y_lo), (end, y_hi)],
                fault_colour(i).mix(0.45).filled(),
            )))
            .map_err(|e| err(path, e))?;
        chart
            .draw_series(std::iter::once(Text::new(
                w.id.clone(),
                (start, y_hi),
                (FAMILY, 12).into_font().color(&BLACK),
            )))
            .map_err(|e| err(path, e))?;
    }
    Ok(())
}

/// Axis tick text for seconds.
pub fn fmt_s(v: &f64) -> String {
    if v.fract().abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// A compact number for axis ticks: 1200 -> 1.2k, 0.0125 -> 0.0125.
pub fn fmt_num(v: &f64) -> String {
    let a = v.abs();
    let trim = |s: String| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            s
        }
    };
    if a >= 1e6 {
        format!("{}M", trim(format!("{:.1}", v / 1e6)))
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 1e3 {
        format!("{}k", trim(format!("{:.1}", v / 1e3)))
    } else if a >= 10.0 || a == 0.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        trim(format!("{v:.1}"))
    } else {
        trim(format!("{v:.4}"))
    }
}

/// The upper end of a y axis: 15% above the largest value, at least `min`.
pub fn y_top(max: f64, min: f64) -> f64 {
    if max.is_finite() && max > 0.0 {
        (max * 1.15).max(min)
    } else {
        min
    }
}
