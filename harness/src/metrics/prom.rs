//! A parser for the Prometheus text exposition format (what `/metrics` serves): comments and
//! `# HELP` / `# TYPE` lines are skipped, each sample line gives a metric name, its labels in
//! order, and a value (an optional timestamp is ignored).

/// Label pairs in order.
type Labels = Vec<(String, String)>;

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Metric name, e.g. `requests_total` or `quorum_write_duration_seconds_bucket`.
    pub metric: String,
    /// Label pairs in the order they appeared.
    pub labels: Labels,
    /// The value (`+Inf`, `-Inf` and `NaN` included).
    pub value: f64,
}

impl Sample {
    /// Labels as Prometheus writes them, `{k="v",le="0.5"}`, or an empty string when there are
    /// none. Values are escaped again (`\\`, `\"`, `\n`).
    pub fn labels_text(&self) -> String {
        if self.labels.is_empty() {
            return String::new();
        }
        let inner: Vec<String> = self
            .labels
            .iter()
            .map(|(k, v)| {
                let v = v
                    .replace('\\', r"\\")
                    .replace('"', "\\\"")
                    .replace('\n', r"\n");
                format!("{k}=\"{v}\"")
            })
            .collect();
        format!("{{{}}}", inner.join(","))
    }
}

/// A line that does not parse, with its 1-based number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("metrics line {line}: {message}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

fn is_name_char(c: char, first: bool) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':' || (!first && c.is_ascii_digit())
}

/// Parses a whole exposition. The first malformed line is an error.
pub fn parse(text: &str) -> Result<Vec<Sample>, ParseError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        out.push(parse_line(line).map_err(|message| ParseError {
            line: i + 1,
            message,
        })?);
    }
    Ok(out)
}

fn parse_line(line: &str) -> Result<Sample, String> {
    let name_end = line
        .char_indices()
        .find(|(i, c)| !is_name_char(*c, *i == 0))
        .map_or(line.len(), |(i, _)| i);
    if name_end == 0 {
        return Err(format!("no metric name in '{line}'"));
    }
    let metric = line[..name_end].to_owned();
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        let (parsed, tail) = parse_labels(after)?;
        labels = parsed;
        rest = tail;
    }
    let mut fields = rest.split_whitespace();
    let value_text = fields.next().ok_or_else(|| format!("{metric}: no value"))?;
    let value =
        parse_value(value_text).ok_or_else(|| format!("{metric}: bad value '{value_text}'"))?;
    if let Some(ts) = fields.next() {
        ts.parse::<i64>()
            .map_err(|_| format!("{metric}: bad timestamp '{ts}'"))?;
    }
    if fields.next().is_some() {
        return Err(format!("{metric}: trailing text"));
    }
    Ok(Sample {
        metric,
        labels,
        value,
    })
}

fn parse_value(t: &str) -> Option<f64> {
    match t {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => t.parse().ok(),
    }
}

/// Parses `k="v",k2="v2"}` (after the `{`); returns the labels and the text after the `}`.
fn parse_labels(mut s: &str) -> Result<(Labels, &str), String> {
    let mut labels = Vec::new();
    loop {
        s = s.trim_start();
        if let Some(tail) = s.strip_prefix('}') {
            return Ok((labels, tail));
        }
        let eq = s.find('=').ok_or("label without '='")?;
        let key = s[..eq].trim();
        if key.is_empty()
            || !key
                .chars()
                .enumerate()
                .all(|(i, c)| is_name_char(c, i == 0) && c != ':')
        {
            return Err(format!("bad label name '{key}'"));
        }
        s = s[eq + 1..].trim_start();
        let body = s.strip_prefix('"').ok_or("label value not quoted")?;
        let mut value = String::new();
        let mut chars = body.char_indices();
        let end = loop {
            match chars.next() {
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => return Err("unterminated escape".into()),
                },
                Some((_, c)) => value.push(c),
                None => return Err("unterminated label value".into()),
            }
        };
        labels.push((key.to_owned(), value));
        s = body[end + 1..].trim_start();
        if let Some(tail) = s.strip_prefix(',') {
            s = tail;
        } else if !s.starts_with('}') {
            return Err("expected ',' or '}' after a label".into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves counters, labelled series, histogram buckets with `+Inf`, escapes and timestamps
    /// parse, comments are skipped, and malformed lines are refused with their line number.
    #[test]
    fn parses_exposition_format() {
        let text = "# HELP requests_total Requests.\n# TYPE requests_total counter\n\
            requests_total{downstream=\"payment\"} 12\n\
            consumer_lag_records 0\n\
            q_bucket{state=\"order\",le=\"0.005\"} 40\n\
            q_bucket{state=\"order\",le=\"+Inf\"} 41 1700000000000\n\
            odd{msg=\"a \\\"b\\\" \\\\ c\\nd\",} 1.5e-3\n";
        let s = parse(text).expect("parses");
        assert_eq!(s.len(), 5);
        assert_eq!(s[0].metric, "requests_total");
        assert_eq!(s[0].labels_text(), "{downstream=\"payment\"}");
        assert_eq!(s[0].value, 12.0);
        assert_eq!(s[1].labels_text(), "");
        assert_eq!(
            s[3].labels,
            vec![
                ("state".into(), "order".into()),
                ("le".into(), "+Inf".into())
            ]
        );
        assert_eq!(s[4].labels[0].1, "a \"b\" \\ c\nd");
        assert_eq!(s[4].labels_text(), "{msg=\"a \\\"b\\\" \\\\ c\\nd\"}");
        assert_eq!(s[4].value, 0.0015);
        for (bad, line) in [
            ("x{a=\"1\" 2", 1),
            ("# ok\nx 1\n{a=\"b\"} 1", 3),
            ("x abc", 1),
            ("x{a=1} 2", 1),
        ] {
            assert_eq!(parse(bad).expect_err(bad).line, line, "{bad}");
        }
    }
}
