//! Human durations on the command line: `500ms`, `10s`, `2m`, `1h`, or bare seconds.

use std::time::Duration;

/// Parses `10s`, `1500ms`, `2m`, `1h` or `30` (seconds).
pub fn parse(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (num, unit) = match t.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("'{text}' is not a duration (try 10s, 500ms, 2m)"))?;
    let scale = match unit {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => {
            return Err(format!(
                "'{text}': unknown unit '{unit}' (use ms, s, m or h)"
            ))
        }
    };
    let secs = n * scale;
    if !secs.is_finite() || !(0.0..=7.0 * 24.0 * 3600.0).contains(&secs) {
        return Err(format!("'{text}' is out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves the accepted spellings and that junk is refused with the culprit quoted.
    #[test]
    fn parses_units_and_refuses_junk() {
        assert_eq!(parse("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse("1500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("7"), Ok(Duration::from_secs(7)));
        assert!(parse("ten").unwrap_err().contains("'ten'"));
        assert!(parse("5y").unwrap_err().contains("unknown unit"));
        assert!(parse("-1s").is_err());
    }
}
