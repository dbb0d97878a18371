//! Toxiproxy's REST API shapes, shared by the `faultproxy` server and the typed client so the two
//! cannot drift apart. Field names and units are Toxiproxy's (milliseconds, KB/s), fixed by the
//! wire format.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "attributes", rename_all = "snake_case")]
pub enum ToxicKind {
    /// Delays data by `latency` ms ± `jitter` ms.
    Latency {
        /// Milliseconds added.
        latency: u64,
        /// Milliseconds of random variation.
        jitter: u64,
    },
    /// Stops data; closes the connection after `timeout` ms (never if 0). Downstream, this is a
    /// lost response: the request reaches the server, the reply never reaches the client.
    Timeout {
        /// Milliseconds before close; 0 holds forever.
        timeout: u64,
    },
    /// On the first data in its stream, waits `timeout` ms and resets the connection (TCP RST).
    ResetPeer {
        /// Milliseconds before the reset.
        timeout: u64,
    },
    /// Limits throughput to `rate` KB/s.
    Bandwidth {
        /// KB per second.
        rate: u64,
    },
    /// Delays the close of the connection by `delay` ms.
    SlowClose {
        /// Milliseconds.
        delay: u64,
    },
    /// Closes the connection after `bytes` bytes.
    LimitData {
        /// Bytes allowed through.
        bytes: u64,
    },
    /// Slices data into small chunks, each delayed.
    Slicer {
        /// Mean chunk size, bytes.
        average_size: u64,
        /// ± bytes of variation.
        size_variation: u64,
        /// Microseconds between chunks.
        delay: u64,
    },
    /// Does nothing.
    Noop,
}

/// Largest attribute value accepted (about 49 days in milliseconds); larger values would
/// overflow the engine's arithmetic.
pub const MAX_ATTRIBUTE: u64 = u32::MAX as u64;

/// The toxic types and their attribute names, in wire order.
const KINDS: &[(&str, &[&str])] = &[
    ("latency", &["latency", "jitter"]),
    ("timeout", &["timeout"]),
    ("reset_peer", &["timeout"]),
    ("bandwidth", &["rate"]),
    ("slow_close", &["delay"]),
    ("limit_data", &["bytes"]),
    ("slicer", &["average_size", "size_variation", "delay"]),
    ("noop", &[]),
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
            ToxicKind::Noop => vec![],
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

    /// The attributes object as on the wire.
    pub fn attributes(&self) -> Map<String, Value> {
        let names = KINDS
            .iter()
            .find(|(t, _)| *t == self.type_name())
            .map_or(&[][..], |(_, n)| *n);
        names
            .iter()
            .zip(self.values())
            .map(|(n, v)| ((*n).to_owned(), Value::from(v)))
            .collect()
    }

    /// Parses `type` and `attributes`; missing attributes are 0 (as in Toxiproxy), unknown
    /// ones and non-integers are errors.
    pub fn from_wire(type_name: &str, attrs: &Map<String, Value>) -> Result<ToxicKind, String> {
        ToxicKind::merge(type_name, &[], attrs)
    }

    /// This kind with `attrs` laid over its current attributes (a toxic update).
    pub fn updated(&self, attrs: &Map<String, Value>) -> Result<ToxicKind, String> {
        ToxicKind::merge(self.type_name(), &self.values(), attrs)
    }

    fn merge(
        type_name: &str,
        base: &[u64],
        attrs: &Map<String, Value>,
    ) -> Result<ToxicKind, String> {
        let Some((_, names)) = KINDS.iter().find(|(t, _)| *t == type_name) else {
            return Err(format!("invalid toxic type '{type_name}'"));
        };
        if let Some(unknown) = attrs.keys().find(|k| !names.contains(&k.as_str())) {
            return Err(format!(
                "unknown attribute '{unknown}' for {type_name} (expected: {})",
                names.join(", ")
            ));
        }
        let mut values = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            let v = match attrs.get(*name) {
                None => base.get(i).copied().unwrap_or(0),
                Some(v) => v.as_u64().ok_or_else(|| {
                    format!("attribute '{name}' must be a non-negative integer, got {v}")
                })?,
            };
            if v > MAX_ATTRIBUTE {
                return Err(format!(
                    "attribute '{name}' is {v}, above the limit {MAX_ATTRIBUTE}"
                ));
            }
            values.push(v);
        }
        let kind = ToxicKind::build(type_name, &values)
            .ok_or_else(|| format!("invalid toxic type '{type_name}'"))?;
        if let ToxicKind::Slicer {
            average_size,
            size_variation,
            ..
        } = kind
        {
            // noxious loops forever on empty slices and underflows on a larger variation.
            if average_size == 0 || size_variation >= average_size {
                return Err(format!(
                    "slicer needs average_size >= 1 and size_variation < average_size, got {average_size} and {size_variation}"
                ));
            }
        }
        Ok(kind)
    }
}

/// A toxic as Toxiproxy shows it: `{"name", "type", "stream", "toxicity", "attributes"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "ToxicWire", try_from = "ToxicWire")]
pub struct Toxic {
    /// Unique within its proxy; defaults to `<type>_<stream>`.
    pub name: String,
    /// Direction.
    pub stream: Stream,
    /// Probability (0..=1) that the toxic applies to a connection.
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

/// The wire form of [`Toxic`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ToxicWire {
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Type name.
    #[serde(rename = "type")]
    pub type_name: String,
    /// `upstream` or `downstream`.
    #[serde(default = "downstream")]
    pub stream: String,
    /// Probability.
    #[serde(default = "one")]
    pub toxicity: f32,
    /// Attributes.
    #[serde(default)]
    pub attributes: Map<String, Value>,
}

fn downstream() -> String {
    "downstream".into()
}

fn one() -> f32 {
    1.0
}

impl From<Toxic> for ToxicWire {
    fn from(t: Toxic) -> ToxicWire {
        ToxicWire {
            name: t.name,
            type_name: t.kind.type_name().to_owned(),
            stream: t.stream.as_str().to_owned(),
            toxicity: t.toxicity,
            attributes: t.kind.attributes(),
        }
    }
}

impl TryFrom<ToxicWire> for Toxic {
    type Error = String;

    fn try_from(w: ToxicWire) -> Result<Toxic, String> {
        let stream = Stream::parse(&w.stream)
            .ok_or_else(|| "stream was invalid, can be either upstream or downstream".to_owned())?;
        let kind = ToxicKind::from_wire(&w.type_name, &w.attributes)?;
        if !(0.0..=1.0).contains(&w.toxicity) {
            return Err(format!("toxicity {} must be between 0 and 1", w.toxicity));
        }
        let name = if w.name.is_empty() {
            format!("{}_{}", w.type_name, w.stream)
        } else {
            w.name
        };
        Ok(Toxic {
            name,
            stream,
            toxicity: w.toxicity,
            kind,
        })
    }
}

/// A proxy with its toxics, as every proxy read answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Proxy {
    /// Unique name.
    pub name: String,
    /// Where it listens (the bound address once started).
    pub listen: String,
    /// Where it connects.
    pub upstream: String,
    /// Whether it accepts connections.
    pub enabled: bool,
    /// Its toxics, upstream first, each stream in creation order.
    #[serde(default)]
    pub toxics: Vec<Toxic>,
}

/// The body of `POST /proxies` and one element of `POST /populate`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewProxy {
    /// Unique name.
    pub name: String,
    /// Where to listen; `127.0.0.1:0` picks a free port.
    #[serde(default)]
    pub listen: String,
    /// Where to connect.
    pub upstream: String,
    /// Starts enabled unless false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// The body of `POST /proxies/{name}`: fields left out keep their values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyUpdate {
    /// New listen address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// New upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// Enable or disable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// The body of `POST /proxies/{name}/toxics/{toxic}`: fields left out keep their values.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ToxicUpdate {
    /// Attributes laid over the current ones.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub attributes: Map<String, Value>,
    /// New toxicity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub toxicity: Option<f32>,
}

/// The answer of `POST /populate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Populated {
    /// The proxies created or kept.
    pub proxies: Vec<Proxy>,
}

/// An error answer: `{"error": "proxy not found", "status": 404}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// What went wrong.
    pub error: String,
    /// The HTTP status, repeated.
    pub status: u16,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Proves toxics round-trip through Toxiproxy's wire shape, defaults apply, and malformed
    /// attributes are refused with a message naming the culprit.
    #[test]
    fn toxic_wire_shape() {
        let t: Toxic =
            serde_json::from_value(json!({"type": "latency", "attributes": {"latency": 50}}))
                .expect("parses");
        assert_eq!(t.name, "latency_downstream");
        assert_eq!(
            t.kind,
            ToxicKind::Latency {
                latency: 50,
                jitter: 0
            }
        );
        let v = serde_json::to_value(&t).expect("serializes");
        assert_eq!(
            v,
            json!({"name": "latency_downstream", "type": "latency", "stream": "downstream",
                   "toxicity": 1.0, "attributes": {"latency": 50, "jitter": 0}})
        );
        let bad = serde_json::from_value::<Toxic>(
            json!({"type": "latency", "attributes": {"latency": -1}}),
        );
        assert!(bad.expect_err("negative").to_string().contains("'latency'"));
        let bad = serde_json::from_value::<Toxic>(json!({"type": "nope"}));
        assert!(bad
            .expect_err("type")
            .to_string()
            .contains("invalid toxic type"));
        let bad = serde_json::from_value::<Toxic>(json!({"type": "noop", "stream": "sideways"}));
        assert!(bad
            .expect_err("stream")
            .to_string()
            .contains("stream was invalid"));
        let up = ToxicKind::Latency {
            latency: 5,
            jitter: 1,
        }
        .updated(json!({"jitter": 9}).as_object().expect("obj"))
        .expect("update");
        assert_eq!(
            up,
            ToxicKind::Latency {
                latency: 5,
                jitter: 9
            }
        );
    }
}
