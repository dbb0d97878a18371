//! Creating run directories and the `latest` link.

use std::path::{Path, PathBuf};

use anyhow::Context;

/// The link in the output directory to the newest run.
pub const LATEST: &str = "latest";

/// A UTC timestamp usable as a directory name, with milliseconds: `20261125T203000.123Z`.
pub fn timestamp() -> String {
    let now = time::OffsetDateTime::now_utc();
    let fmt = time::macros::format_description!(
        "[year][month][day]T[hour][minute][second].[subsecond digits:3]Z"
    );
    now.format(&fmt)
        .unwrap_or_else(|_| now.unix_timestamp().to_string())
}

/// Creates `<out>/<scenario>/<timestamp>/` and points `<out>/latest` at it.
pub fn create(out: &Path, scenario: &str) -> anyhow::Result<PathBuf> {
    let stamp = timestamp();
    let dir = out.join(scenario).join(&stamp);
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("creating run directory {}", dir.display()))?;
    point_latest(out, &Path::new(scenario).join(&stamp))?;
    Ok(dir)
}

/// Atomically replaces `<out>/latest` with a relative symlink to `target`.
pub fn point_latest(out: &Path, target: &Path) -> anyhow::Result<()> {
    let tmp = out.join(format!(".latest.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp)
        .with_context(|| format!("linking {}", tmp.display()))?;
    std::fs::rename(&tmp, out.join(LATEST)).context("updating the latest link")?;
    Ok(())
}
