//! Node logs (contract §4): `nodes/<node>/<role>.log`, JSON lines in tracing's format with the
//! message in `fields.message`. Lines that are not JSON (a panic message, a line cut by SIGKILL)
//! are counted, not fatal: a log is evidence, not a schema.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use crate::rundir::{files, ReadError};

/// How many unparseable line numbers a scan remembers (the count covers all of them).
pub const MAX_REMEMBERED_BAD_LINES: usize = 20;
/// Longest line read in full; longer lines are counted as unparseable (bounded memory).
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// One relevant log line.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEvent {
    /// The log file relative to the run directory, e.g. `nodes/n1/store.log`.
    pub file: String,
    /// 1-based line number.
    pub line: usize,
    /// The line's `timestamp`, as written.
    pub timestamp: Option<String>,
    /// `fields.message`.
    pub message: String,
    /// The other `fields`.
    pub fields: serde_json::Map<String, serde_json::Value>,
}

impl LogEvent {
    /// `file:line`, for evidence.
    pub fn at(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }

    /// A field as text (strings as they are, numbers rendered).
    pub fn text(&self, name: &str) -> Option<String> {
        match self.fields.get(name)? {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Null => None,
            other => Some(other.to_string()),
        }
    }

    /// A field as an unsigned integer, whether written as a number or a numeric string.
    pub fn number(&self, name: &str) -> Option<u64> {
        match self.fields.get(name)? {
            serde_json::Value::Number(n) => n.as_u64(),
            serde_json::Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }
}

/// What a scan saw besides the events.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScanStats {
    /// Lines read.
    pub lines: usize,
    /// Lines mentioning a wanted message that did not parse as a JSON log line.
    pub bad_lines: usize,
    /// The first [`MAX_REMEMBERED_BAD_LINES`] of them as `file:line`.
    pub bad_at: Vec<String>,
}

/// The log files of `role`: `(node, path relative to the run dir, absolute path)`, by node.
pub fn role_logs(dir: &Path, role: &str) -> Vec<(String, String, PathBuf)> {
    let mut out = Vec::new();
    for node in node_names(dir) {
        let rel = format!("{}/{node}/{role}.log", files::NODES_DIR);
        let abs = dir.join(&rel);
        if abs.is_file() {
            out.push((node, rel, abs));
        }
    }
    out
}

/// Node folders under `nodes/` that hold at least one `.log` file, sorted.
pub fn node_names(dir: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir.join(files::NODES_DIR)) else {
        return Vec::new();
    };
    let mut out: Vec<String> = entries
        .flatten()
        .filter(|e| {
            fs::read_dir(e.path()).is_ok_and(|mut logs| {
                logs.any(|l| l.is_ok_and(|l| l.path().extension().is_some_and(|x| x == "log")))
            })
        })
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .collect();
    out.sort();
    out
}

/// Reads `abs` line by line and calls `visit` for every JSON log line whose `fields.message` is
/// one of `messages`. Lines not mentioning any of them are not parsed at all.
pub fn scan(
    abs: &Path,
    rel: &str,
    messages: &[&str],
    mut visit: impl FnMut(LogEvent),
) -> Result<ScanStats, ReadError> {
    let io = |source| ReadError::Io {
        path: abs.to_owned(),
        source,
    };
    let mut reader = BufReader::new(fs::File::open(abs).map_err(io)?);
    let mut stats = ScanStats::default();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = std::io::Read::take(&mut reader, MAX_LINE_BYTES as u64)
            .read_until(b'\n', &mut buf)
            .map_err(io)?;
        if n == 0 {
            break;
        }
        stats.lines += 1;
        if !buf.ends_with(b"\n") && n == MAX_LINE_BYTES {
            // Skip the rest of an overlong line.
            let mut rest = Vec::new();
            reader.read_until(b'\n', &mut rest).map_err(io)?;
        }
        let text = String::from_utf8_lossy(&buf);
        if !messages.iter().any(|m| text.contains(m)) {
            continue;
        }
        let parsed = serde_json::from_str::<serde_json::Value>(text.trim_end()).ok();
        let event = parsed.and_then(|v| event_from(v, rel, stats.lines));
        match event {
            Some(e) if messages.contains(&e.message.as_str()) => visit(e),
            Some(_) => {}
            None => {
                stats.bad_lines += 1;
                if stats.bad_at.len() < MAX_REMEMBERED_BAD_LINES {
                    stats.bad_at.push(format!("{rel}:{}", stats.lines));
                }
            }
        }
    }
    Ok(stats)
}

fn event_from(v: serde_json::Value, rel: &str, line: usize) -> Option<LogEvent> {
    let serde_json::Value::Object(mut top) = v else {
        return None;
    };
    let serde_json::Value::Object(mut fields) = top.remove("fields")? else {
        return None;
    };
    let message = match fields.remove("message")? {
        serde_json::Value::String(s) => s,
        _ => return None,
    };
    let timestamp = top
        .get("timestamp")
        .and_then(|t| t.as_str())
        .map(str::to_owned);
    Some(LogEvent {
        file: rel.to_owned(),
        line,
        timestamp,
        message,
        fields,
    })
}

/// A log line's RFC 3339 UTC timestamp (`2026-12-01T08:54:09.658123Z`, as tracing writes it)
/// in Unix milliseconds; `None` for anything else.
pub fn unix_ms(ts: &str) -> Option<u64> {
    let ts = ts.strip_suffix('Z')?;
    let (date, time) = ts.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut t = hms.splitn(3, ':').map(|p| p.parse::<u64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let ms_frac: u64 = format!("{frac:0<3}").get(..3)?.parse().ok()?;
    // Howard Hinnant's days-from-civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = u64::try_from(era * 146_097 + doe - 719_468).ok()?;
    Some(((days * 86_400 + hh * 3600 + mm * 60 + ss) * 1000) + ms_frac)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves tracing's timestamps convert to Unix milliseconds (checked against known
    /// instants) and anything else is refused.
    #[test]
    fn timestamps_convert() {
        assert_eq!(unix_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            unix_ms("2026-01-01T00:00:00.000000Z"),
            Some(1_767_225_600_000)
        );
        assert_eq!(
            unix_ms("2026-12-01T08:54:09.658123Z"),
            Some(1_796_115_249_658)
        );
        assert_eq!(unix_ms("2024-02-29T12:00:00.5Z"), Some(1_709_208_000_500));
        assert_eq!(unix_ms("2026-13-01T00:00:00Z"), None);
        assert_eq!(unix_ms("yesterday"), None);
        assert_eq!(unix_ms("2026-01-01T00:00:00+01:00"), None);
    }
}
