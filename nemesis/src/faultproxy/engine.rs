//! One proxy's data path inside noxious: a noxious proxy runner on a private loopback port,
//! carrying latency, timeout, slow_close, limit_data and slicer. `reset_peer` (which noxious
//! lacks) and `bandwidth` (whose noxious version panics) live in [`super::front`].

use std::net::{SocketAddr, TcpListener as StdListener};
use std::time::Duration;

use bmrng::RequestSender;
use noxious::proxy::{ProxyConfig, ProxyRunner, Runner, Toxics};
use noxious::signal::{Close, Stop, Stopper};
use noxious::socket::TcpListener;
use noxious::toxic::{
    StreamDirection, Toxic as NoxToxic, ToxicEvent, ToxicEventKind, ToxicEventResult,
    ToxicKind as NoxKind,
};

use crate::toxiproxy::api::{Stream, Toxic, ToxicKind};

/// How many times a private port is picked before giving up (another process may take it
/// between the pick and the bind).
const BIND_ATTEMPTS: usize = 5;
/// Toxic events waiting for the runner.
const EVENTS_CAPACITY: usize = 16;
/// How long a stopping runner gets to close its listener.
const STOP_WAIT: Duration = Duration::from_secs(2);

/// A running noxious proxy.
pub struct Engine {
    /// Where it listens (loopback, private to the front).
    pub addr: SocketAddr,
    name: String,
    stopper: Stopper,
    close: Close,
    events: RequestSender<ToxicEvent, ToxicEventResult>,
}

/// The noxious form of a toxic, or `None` for the ones the front handles.
pub fn to_noxious(t: &Toxic) -> Option<NoxToxic> {
    let kind = match t.kind {
        // noxious computes latency + r - jitter in u64: a jitter above the latency would
        // underflow (Toxiproxy's negative delays end at zero; clamping is the closest match).
        ToxicKind::Latency { latency, jitter } => NoxKind::Latency {
            latency,
            jitter: jitter.min(latency),
        },
        ToxicKind::Timeout { timeout } => NoxKind::Timeout { timeout },
        ToxicKind::SlowClose { delay } => NoxKind::SlowClose { delay },
        ToxicKind::LimitData { bytes } => NoxKind::LimitData { bytes },
        ToxicKind::Slicer {
            average_size,
            size_variation,
            delay,
        } => NoxKind::Slicer {
            average_size,
            size_variation,
            delay,
        },
        ToxicKind::Noop => NoxKind::Noop,
        // Applied by the front (see `front`).
        ToxicKind::ResetPeer { .. } | ToxicKind::Bandwidth { .. } => return None,
    };
    Some(NoxToxic {
        kind,
        name: t.name.clone(),
        toxicity: t.toxicity,
        direction: match t.stream {
            Stream::Upstream => StreamDirection::Upstream,
            Stream::Downstream => StreamDirection::Downstream,
        },
    })
}

fn free_port() -> std::io::Result<u16> {
    Ok(StdListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Engine {
    /// Starts a runner towards `upstream` with `toxics` already in place.
    pub async fn start(
        name: &str,
        upstream: &str,
        toxics: &[Toxic],
        seed: u64,
    ) -> std::io::Result<Engine> {
        let mut initial = Toxics::empty();
        for t in toxics.iter().filter_map(to_noxious) {
            match t.direction {
                StreamDirection::Upstream => initial.upstream.push(t),
                StreamDirection::Downstream => initial.downstream.push(t),
            }
        }
        let mut last_err = None;
        for _ in 0..BIND_ATTEMPTS {
            let addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
            let config = ProxyConfig {
                name: name.to_owned(),
                listen: addr.to_string(),
                upstream: upstream.to_owned(),
                enabled: true,
                rand_seed: Some(seed),
            };
            match ProxyRunner::initialize_proxy::<TcpListener>(config, initial.clone()).await {
                Ok((listener, info)) => {
                    let (stop, stopper) = Stop::new();
                    let (close, closer) = Close::new();
                    let (events, receiver) = bmrng::channel(EVENTS_CAPACITY);
                    tokio::spawn(ProxyRunner::run_proxy(
                        listener, info, receiver, stop, closer,
                    ));
                    return Ok(Engine {
                        addr,
                        name: name.to_owned(),
                        stopper,
                        close,
                        events,
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => last_err = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_err.unwrap_or_else(|| std::io::Error::other("no free port")))
    }

    async fn send(&self, kind: ToxicEventKind) -> Result<(), String> {
        match self
            .events
            .send_receive(ToxicEvent::new(self.name.clone(), kind))
            .await
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("proxy engine refused the toxic change: {e}")),
            Err(_) => Err("proxy engine is gone".into()),
        }
    }

    /// Adds a toxic to the running proxy (existing connections included).
    pub async fn add(&self, t: &Toxic) -> Result<(), String> {
        match to_noxious(t) {
            Some(t) => self.send(ToxicEventKind::AddToxic(t)).await,
            None => Ok(()),
        }
    }

    /// Replaces the toxic of the same name.
    pub async fn update(&self, t: &Toxic) -> Result<(), String> {
        match to_noxious(t) {
            Some(t) => self.send(ToxicEventKind::UpdateToxic(t)).await,
            None => Ok(()),
        }
    }

    /// Removes a toxic.
    pub async fn remove(&self, t: &Toxic) -> Result<(), String> {
        match to_noxious(t) {
            Some(_) => self.send(ToxicEventKind::RemoveToxic(t.name.clone())).await,
            None => Ok(()),
        }
    }

    /// Stops the runner and its connections.
    pub async fn stop(self) {
        self.stopper.stop();
        let _ = tokio::time::timeout(STOP_WAIT, self.close.recv()).await;
    }
}
