//! Toxics on the wire: `{"name", "type", "stream", "toxicity", "attributes"}`, Toxiproxy's
//! names and units (milliseconds, KB/s, microseconds for the slicer's delay), plus the `http`
//! toxic of [`super::http`].

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::http::HttpToxic;

/// Which way a toxic acts: `upstream` is client → server data, `downstream` server → client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// Client → server.
    Upstream,
    /// Server → client.
    Downstream,
}

impl Stream {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Upstream => "upstream",
            Stream::Downstream => "downstream",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Stream> {
        match s {
            "upstream" => Some(Stream::Upstream),
            "downstream" => Some(Stream::Downstream),
            _ => None,
        }
    }
}

/// What a toxic does, with its attributes (Toxiproxy's names and units).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToxicKind {
    /// Delays data by `latency` ms ± `jitter` ms.
    Latency {
        /// Milliseconds added.
        latency: u64,
        /// Milliseconds of random variation.
        jitter: u64,
    },
    /// Drops data; closes the connection `timeout` ms after the last data it dropped (never if
    /// 0). Downstream, this is a lost response: the request reaches the server, the reply never
    /// reaches the client.
    Timeout {
        /// Milliseconds before close; 0 holds forever.
        timeout: u64,
    },
    /// On the first data (or close) in its stream, waits `timeout` ms and resets the connection
    /// (TCP RST to both sides).
    ResetPeer {
        /// Milliseconds before the reset.
        timeout: u64,
    },
    /// Limits throughput to `rate` KB/s (0: unlimited).
    Bandwidth {
        /// KB per second.
        rate: u64,
    },
    /// Delays the close of the stream by `delay` ms.
    SlowClose {
        /// Milliseconds.
        delay: u64,
    },
    /// Closes the connection after `bytes` bytes in its stream.
    LimitData {
        /// Bytes allowed through.
        bytes: u64,
    },
    /// Slices data into small chunks, each followed by a pause.
    Slicer {
        /// Mean chunk size, bytes.
        average_size: u64,
        /// ± bytes of variation.
        size_variation: u64,
        /// Microseconds after each chunk.
        delay: u64,
    },
    /// Does nothing.
    Noop,
    /// Acts on matching HTTP/1.1 exchanges only (not a Toxiproxy toxic).
    Http(HttpToxic),
}

/// Largest numeric attribute accepted (about 49 days in milliseconds); larger values would
/// overflow the engine's time arithmetic.
pub const MAX_ATTRIBUTE: u64 = u32::MAX as u64;

/// The numeric toxic types and their attribute names, in wire order.
const NUMERIC: &[(&str, &[&str])] = &[
    ("latency", &["latency", "jitter"]),
    ("timeout", &["timeout"]),
    ("reset_peer", &["timeout"]),
    ("bandwidth", &["rate"]),
    ("slow_close", &["delay"]),
    ("limit_data", &["bytes"]),
    ("slicer", &["average_size", "size_variation", "delay"]),
    ("noop", &[]),
];

/// Every toxic type name this server knows.
pub const TYPE_NAMES: &[&str] = &[
    "latency",
    "timeout",
    "reset_peer",
    "bandwidth",
    "slow_close",
    "limit_data",
    "slicer",
    "noop",
    "http",
];

impl ToxicKind {
    /// The wire type name (`latency`, `reset_peer`, ...).
    pub fn type_name(&self) -> &'static str {
        match self {
            ToxicKind::Latency { .. } => "latency",
            ToxicKind::Timeout { .. } => "timeout",
            ToxicKind::ResetPeer { .. } => "reset_peer",
            ToxicKind::Bandwidth { .. } => "bandwidth",
            ToxicKind::SlowClose { .. } => "slow_close",
            ToxicKind::LimitData { .. } => "limit_data",
            ToxicKind::Slicer { .. } => "slicer",
            ToxicKind::Noop => "noop",
            ToxicKind::Http(_) => "http",
        }
    }

    fn values(&self) -> Vec<u64> {
        match *self {
            ToxicKind::Latency { latency, jitter } => vec![latency, jitter],
            ToxicKind::Timeout { timeout } | ToxicKind::ResetPeer { timeout } => vec![timeout],
            ToxicKind::Bandwidth { rate } => vec![rate],
            ToxicKind::SlowClose { delay } => vec![delay],
            ToxicKind::LimitData { bytes } => vec![bytes],
            ToxicKind::Slicer {
                average_size,
                size_variation,
                delay,
            } => vec![average_size, size_variation, delay],
            ToxicKind::Noop | ToxicKind::Http(_) => vec![],
        }
    }

    fn build(type_name: &str, v: &[u64]) -> Option<ToxicKind> {
        let at = |i: usize| v.get(i).copied().unwrap_or(0);
        Some(match type_name {
            "latency" => ToxicKind::Latency {
                latency: at(0),
                jitter: at(1),
            },
            "timeout" => ToxicKind::Timeout { timeout: at(0) },
            "reset_peer" => ToxicKind::ResetPeer { timeout: at(0) },
            "bandwidth" => ToxicKind::Bandwidth { rate: at(0) },
            "slow_close" => ToxicKind::SlowClose { delay: at(0) },
            "limit_data" => ToxicKind::LimitData { bytes: at(0) },
            "slicer" => ToxicKind::Slicer {
                average_size: at(0),
                size_variation: at(1),
                delay: at(2),
            },
            "noop" => ToxicKind::Noop,
            _ => return None,
        })
    }

    /// Whether `type_name` names a toxic this server knows.
    pub fn known(type_name: &str) -> bool {
        TYPE_NAMES.contains(&type_name)
    }

    /// The attributes object as on the wire.
    pub fn attributes(&self) -> Map<String, Value> {
        if let ToxicKind::Http(h) = self {
            return h.attributes();
        }
        let names = NUMERIC
            .iter()
            .find(|(t, _)| *t == self.type_name())
            .map_or(&[][..], |(_, n)| *n);
        names
            .iter()
            .zip(self.values())
            .map(|(n, v)| ((*n).to_owned(), Value::from(v)))
            .collect()
    }

    /// Parses `type` and `attributes`; missing (or `null`) attributes take their defaults (0
    /// for the numeric toxics, as in Toxiproxy); unknown ones and values of the wrong type are
    /// errors naming the attribute.
    pub fn from_wire(type_name: &str, attrs: &Map<String, Value>) -> Result<ToxicKind, String> {
        if type_name == "http" {
            return HttpToxic::merge(None, attrs).map(ToxicKind::Http);
        }
        ToxicKind::merge(type_name, &[], attrs)
    }

    /// This kind with `attrs` laid over its current attributes (a toxic update).
    pub fn updated(&self, attrs: &Map<String, Value>) -> Result<ToxicKind, String> {
        if let ToxicKind::Http(h) = self {
            return HttpToxic::merge(Some(h), attrs).map(ToxicKind::Http);
        }
        ToxicKind::merge(self.type_name(), &self.values(), attrs)
    }

    fn merge(
        type_name: &str,
        base: &[u64],
        attrs: &Map<String, Value>,
    ) -> Result<ToxicKind, String> {
        let Some((_, names)) = NUMERIC.iter().find(|(t, _)| *t == type_name) else {
            return Err("invalid toxic type".to_owned());
        };
        check_known(type_name, names, attrs)?;
        let mut values = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            let v = match attrs.get(*name) {
                None | Some(Value::Null) => base.get(i).copied().unwrap_or(0),
                Some(v) => uint(name, v, MAX_ATTRIBUTE)?,
            };
            values.push(v);
        }
        let kind =
            ToxicKind::build(type_name, &values).ok_or_else(|| "invalid toxic type".to_owned())?;
        if let ToxicKind::Slicer {
            average_size,
            size_variation,
            ..
        } = kind
        {
            // Toxiproxy's own rule (size_variation must be below average_size); an empty slice
            // would never end.
            if average_size == 0 || size_variation >= average_size {
                return Err(format!(
                    "slicer needs average_size >= 1 and size_variation < average_size, got {average_size} and {size_variation}"
                ));
            }
        }
        Ok(kind)
    }
}

/// Refuses attribute names `type_name` does not have (a typo would otherwise be a silent 0).
pub(super) fn check_known(
    type_name: &str,
    names: &[&str],
    attrs: &Map<String, Value>,
) -> Result<(), String> {
    match attrs.keys().find(|k| !names.contains(&k.as_str())) {
        Some(unknown) => Err(format!(
            "unknown attribute '{unknown}' for {type_name} (expected: {})",
            names.join(", ")
        )),
        None => Ok(()),
    }
}

/// A non-negative integer attribute at most `max`.
pub(super) fn uint(name: &str, v: &Value, max: u64) -> Result<u64, String> {
    let n = v
        .as_u64()
        .ok_or_else(|| format!("attribute '{name}' must be a non-negative integer, got {v}"))?;
    if n > max {
        return Err(format!("attribute '{name}' is {n}, above the limit {max}"));
    }
    Ok(n)
}

/// The `{"type", "attributes"}` pair, for a [`ToxicKind`] stored on its own (heal ledgers).
#[derive(Serialize, Deserialize)]
struct KindWire {
    #[serde(rename = "type")]
    type_name: String,
    #[serde(default)]
    attributes: Map<String, Value>,
}

impl Serialize for ToxicKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        KindWire {
            type_name: self.type_name().to_owned(),
            attributes: self.attributes(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for ToxicKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ToxicKind, D::Error> {
        let w = KindWire::deserialize(d)?;
        ToxicKind::from_wire(&w.type_name, &w.attributes).map_err(serde::de::Error::custom)
    }
}

/// A toxic as Toxiproxy shows it: `{"name", "type", "stream", "toxicity", "attributes"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "ToxicWire", try_from = "ToxicWire")]
pub struct Toxic {
    /// Unique within its proxy; defaults to `<type>_<stream>`.
    pub name: String,
    /// Direction (an `http` toxic is always `downstream`: it acts on whole exchanges).
    pub stream: Stream,
    /// Probability (0..=1) that the toxic applies: per connection for the TCP toxics (as in
    /// Toxiproxy), per selected exchange for `http`.
    pub toxicity: f32,
    /// What it does.
    pub kind: ToxicKind,
}

impl Toxic {
    /// A toxic with toxicity 1 and the default name `<type>_<stream>`.
    pub fn new(kind: ToxicKind, stream: Stream) -> Toxic {
        Toxic {
            name: format!("{}_{}", kind.type_name(), stream.as_str()),
            stream,
            toxicity: 1.0,
            kind,
        }
    }

    /// The same toxic under another name.
    pub fn named(mut self, name: impl Into<String>) -> Toxic {
        self.name = name.into();
        self
    }
}

/// The wire form of [`Toxic`]. Every field may be absent or `null` (Toxiproxy's Go client sends
/// `"attributes": null` for a toxic with default attributes); defaults are Toxiproxy's.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ToxicWire {
    /// Name; defaults to `<type>_<stream>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Type name.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_name: Option<String>,
    /// `upstream` or `downstream` (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    /// Probability; defaults to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub toxicity: Option<f32>,
    /// Attributes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Map<String, Value>>,
}

/// Why a wire toxic is refused, in the order Toxiproxy checks (so the same body gets the same
/// status from both servers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// `stream was invalid, can be either upstream or downstream`.
    Stream,
    /// `invalid toxic type`.
    Type,
    /// A bad attribute or toxicity (`bad request body: ...`).
    Body(String),
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WireError::Stream => {
                f.write_str("stream was invalid, can be either upstream or downstream")
            }
            WireError::Type => f.write_str("invalid toxic type"),
            WireError::Body(m) => write!(f, "bad request body: {m}"),
        }
    }
}

impl ToxicWire {
    /// The stream, name and type this toxic would get (Toxiproxy checks these before it looks
    /// for a duplicate name, and the attributes after).
    pub fn header(&self) -> Result<(Stream, String, String), WireError> {
        let stream_name = self.stream.as_deref().unwrap_or("downstream");
        let stream = Stream::parse(stream_name).ok_or(WireError::Stream)?;
        let type_name = self.type_name.clone().unwrap_or_default();
        let name = match self.name.as_deref() {
            None | Some("") => format!("{type_name}_{stream_name}"),
            Some(n) => n.to_owned(),
        };
        if !ToxicKind::known(&type_name) {
            return Err(WireError::Type);
        }
        Ok((stream, name, type_name))
    }

    /// The full toxic.
    pub fn into_toxic(self) -> Result<Toxic, WireError> {
        let (stream, name, type_name) = self.header()?;
        let empty = Map::new();
        let attrs = self.attributes.as_ref().unwrap_or(&empty);
        let kind = ToxicKind::from_wire(&type_name, attrs).map_err(WireError::Body)?;
        let toxicity = self.toxicity.unwrap_or(1.0);
        if !(0.0..=1.0).contains(&toxicity) {
            return Err(WireError::Body(format!(
                "toxicity {toxicity} must be between 0 and 1"
            )));
        }
        if matches!(kind, ToxicKind::Http(_)) && stream != Stream::Downstream {
            return Err(WireError::Body(
                "an http toxic acts on whole exchanges (request and response): its stream must be downstream".into(),
            ));
        }
        Ok(Toxic {
            name,
            stream,
            toxicity,
            kind,
        })
    }
}

impl From<Toxic> for ToxicWire {
    fn from(t: Toxic) -> ToxicWire {
        ToxicWire {
            name: Some(t.name),
            type_name: Some(t.kind.type_name().to_owned()),
            stream: Some(t.stream.as_str().to_owned()),
            toxicity: Some(t.toxicity),
            attributes: Some(t.kind.attributes()),
        }
    }
}

impl TryFrom<ToxicWire> for Toxic {
    type Error = String;

    fn try_from(w: ToxicWire) -> Result<Toxic, String> {
        w.into_toxic().map_err(|e| e.to_string())
    }
}
