//! Human durations, as the command line and the `--fault` language spell them: `500ms`, `10s`,
//! `2m`, `1h`, or bare seconds. Durations are whole milliseconds, so that every one is spelled
//! back exactly ([`spell`]) and stored exactly (`spec.json` keeps milliseconds, [`ms`]).

use std::time::Duration;

/// The longest duration accepted anywhere: a week.
pub const MAX: Duration = Duration::from_secs(7 * 24 * 3600);

/// Parses `10s`, `1500ms`, `2m`, `1h`, `0.5s` or `30` (seconds). The result must be a whole
/// number of milliseconds no longer than [`MAX`]; errors quote the text.
pub fn parse(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (num, unit) = match t.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("'{text}' is not a duration (try 10s, 500ms, 2m)"))?;
    let scale_ms = match unit {
        "ms" => 1.0,
        "s" => 1e3,
        "m" => 60e3,
        "h" => 3600e3,
        _ => {
            return Err(format!(
                "'{text}': unknown unit '{unit}' (use ms, s, m or h)"
            ))
        }
    };
    let total_ms = n * scale_ms;
    if !total_ms.is_finite() || !(0.0..=MAX.as_millis() as f64).contains(&total_ms) {
        return Err(format!("'{text}' is out of range (at most 7 days)"));
    }
    let whole = total_ms.round();
    if (total_ms - whole).abs() > 1e-6 {
        return Err(format!("'{text}': durations are whole milliseconds"));
    }
    Ok(Duration::from_millis(whole as u64))
}

/// The shortest exact spelling [`parse`] reads back: `2m`, `30s`, `1500ms`.
pub fn spell(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        "0s".into()
    } else if ms % 3_600_000 == 0 {
        format!("{}h", ms / 3_600_000)
    } else if ms % 60_000 == 0 {
        format!("{}m", ms / 60_000)
    } else if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// Serde for a [`Duration`] as whole milliseconds (`"time_limit_ms": 30000`).
pub mod ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes whole milliseconds.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    /// Reads whole milliseconds.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

/// Serde for an `Option<Duration>` as whole milliseconds or null.
pub mod ms_opt {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes whole milliseconds or null.
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::ms::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    /// Reads whole milliseconds or null.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves the accepted spellings, that junk and sub-millisecond durations are refused with
    /// the culprit quoted, and that every spelling reads back as the same duration.
    #[test]
    fn parses_units_spells_back_and_refuses_junk() {
        assert_eq!(parse("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse("1500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("0.5s"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("7"), Ok(Duration::from_secs(7)));
        assert!(parse("ten").unwrap_err().contains("'ten'"));
        assert!(parse("5y").unwrap_err().contains("unknown unit"));
        assert!(parse("0.5ms").unwrap_err().contains("whole milliseconds"));
        assert!(parse("-1s").is_err());
        assert!(parse("8d").is_err());
        for ms in [0, 1, 999, 1000, 1500, 60_000, 90_000, 3_600_000, 7_200_001] {
            let d = Duration::from_millis(ms);
            assert_eq!(parse(&spell(d)), Ok(d), "{}", spell(d));
        }
        assert_eq!(spell(Duration::from_secs(120)), "2m");
        assert_eq!(spell(Duration::from_millis(3500)), "3500ms");
    }
}
