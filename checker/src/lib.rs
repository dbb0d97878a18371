//! # checker
//!
//! Reads a run directory and decides whether the run was valid. It owns the history schema
//! (the harness writes it, the checker reads it), the checks, the composed three-valued verdict
//! and the report (results.json, index.html, PNG graphs).
//!
//! It does no I/O beyond reading a run directory and writing its report files into it.
//!
//! ```no_run
//! let dir = std::path::Path::new("reports/latest");
//! let run = checker::RunData::load(dir)?;
//! let results = checker::checks::check_all(&run);
//! checker::report::write_report(&run, &results)?;
//! std::process::exit(results.validity.exit_code());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod analysis;
pub mod checks;
pub mod expectation;
pub mod final_state;
pub mod history;
pub mod lincheck;
pub mod logs;
pub mod metrics;
pub mod report;
pub mod rundir;
pub mod verdict;

pub use rundir::{ReadError, RunData};
pub use verdict::{CheckResult, Results, Validity};

/// Loads a run directory, checks it and writes its report. The one call `harness run` and
/// `harness analyze` both make.
pub fn analyze(dir: &std::path::Path) -> Result<Results, AnalyzeError> {
    analyze_compared(dir, None)
}

/// As [`analyze`]; with `other`, a second run directory (e.g. the same scenario without the
/// retry budget) whose retry load is drawn on the same graph. `other` is read, never written.
pub fn analyze_compared(
    dir: &std::path::Path,
    other: Option<&std::path::Path>,
) -> Result<Results, AnalyzeError> {
    let run = RunData::load(dir)?;
    let other = other.map(RunData::load).transpose()?;
    let inventory = lincheck::analyze_inventory(
        &run.history,
        &run.final_state,
        &lincheck::InventoryOptions::default(),
    );
    if !inventory.history.ops.is_empty() {
        lincheck::write_html(&run.dir, &inventory.html()).map_err(|source| {
            report::ReportError::Io {
                path: run.dir.join(rundir::files::LINEARIZABILITY_HTML),
                source,
            }
        })?;
    }
    let results =
        checks::check_all_parts(&run, &checks::Params::default(), inventory.check_result());
    report::write_report_compared(&run, &results, other.as_ref())?;
    Ok(results)
}

/// Why a run could not be analyzed.
#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    /// The run directory could not be read.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The report could not be written.
    #[error(transparent)]
    Report(#[from] report::ReportError),
}
