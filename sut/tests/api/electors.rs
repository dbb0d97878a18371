//! Electors of the library in a test: their log lines captured, a thread hogging a core, TCP
//! proxies that delay a candidate's requests to a replica, and a candidate with its own store
//! client (issue 15).

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pipeline::config::QuorumSpec;
use pipeline::lease::{Candidate, Elector};
use pipeline::quorum::replicas::{Replicas, Reply};
use pipeline::quorum::Quorum;
use pipeline::rng::SharedRng;
use serde_json::Value;

use crate::cluster::Cluster;

/// Lease length of the test's candidates: short, so that a round takes well under a second.
pub const TTL: Duration = Duration::from_millis(1000);
/// One store request of a candidate.
const STORE_TIMEOUT: Duration = Duration::from_millis(500);

/// The JSON log lines of the tracing events of the threads that installed it.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// Captures the current thread's events for as long as the guard lives.
    pub fn install(&self) -> tracing::subscriber::DefaultGuard {
        let me = self.clone();
        let sub = tracing_subscriber::fmt()
            .json()
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || me.clone())
            .finish();
        tracing::subscriber::set_default(sub)
    }

    /// A runtime of three worker threads whose events are all captured here.
    pub fn runtime(&self) -> tokio::runtime::Runtime {
        let me = self.clone();
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(3)
            .enable_all()
            .on_thread_start(move || std::mem::forget(me.install()))
            .build()
            .expect("runtime")
    }

    /// The fields of every line whose message is `message`.
    pub fn lines(&self, message: &str) -> Vec<Value> {
        let buf = self.0.lock().expect("log buffer").clone();
        String::from_utf8_lossy(&buf)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["fields"]["message"] == message)
            .map(|v| v["fields"].clone())
            .collect()
    }
}

/// A thread spinning on a core until dropped.
pub struct Hog {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

impl Hog {
    pub fn start() -> Hog {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut spins = 0u64;
            while !s.load(Ordering::Relaxed) {
                spins = spins.wrapping_add(1);
                std::hint::spin_loop();
            }
            spins
        });
        Hog {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Hog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A TCP proxy on loopback in front of one store replica that holds each chunk a client sends
/// for a settable delay before passing it on (answers pass at once). Set per candidate and
/// replica each round, seeded, so that the candidates' requests reach the replicas in many
/// orders, as on a busy machine.
pub struct DelayProxy {
    /// Where the candidate connects.
    pub url: String,
    /// How long each chunk is held.
    pub delay_ms: Arc<AtomicU64>,
}

impl DelayProxy {
    pub async fn start(target: std::net::SocketAddr) -> DelayProxy {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let delay_ms = Arc::new(AtomicU64::new(0));
        let delay = delay_ms.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let delay = delay.clone();
                tokio::spawn(async move {
                    let Ok(server) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    let (mut from_client, mut to_client) = client.into_split();
                    let (mut from_server, mut to_server) = server.into_split();
                    let up = async move {
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            let n = from_client.read(&mut buf).await?;
                            if n == 0 {
                                return to_server.shutdown().await;
                            }
                            let d = delay.load(Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(d)).await;
                            to_server.write_all(&buf[..n]).await?;
                        }
                    };
                    let down = tokio::io::copy(&mut from_server, &mut to_client);
                    let _: (std::io::Result<()>, _) = tokio::join!(up, down);
                });
            }
        });
        DelayProxy { url, delay_ms }
    }
}

/// Three proxies per candidate, one in front of each replica.
pub fn proxies(rt: &tokio::runtime::Runtime, c: &Cluster) -> Vec<Vec<DelayProxy>> {
    let targets: Vec<std::net::SocketAddr> = c
        .store_replicas()
        .iter()
        .map(|(_, url)| {
            url.trim_start_matches("http://")
                .parse()
                .expect("replica address")
        })
        .collect();
    (0..3)
        .map(|_| {
            targets
                .iter()
                .map(|t| rt.block_on(DelayProxy::start(*t)))
                .collect()
        })
        .collect()
}

/// A candidate: its own store client and a quorum client that needs every replica (W = 3),
/// sharing the elector's floor.
pub struct Cand {
    /// Its store client.
    pub replicas: Replicas,
    /// Its quorum client (W = 3), sharing the elector's floor.
    pub quorum: Quorum,
}

impl Cand {
    /// A candidate of cluster `c` reaching its replicas `(node, URL)` at `urls`, with the
    /// cluster secret.
    pub fn new(c: &Cluster, urls: Vec<(String, String)>, index: usize) -> Cand {
        let replicas = Replicas::with_client(urls, c.peers().builder(STORE_TIMEOUT));
        let spec = QuorumSpec {
            n: 3,
            r: 2,
            w: 3,
            eventual: false,
        };
        let quorum = Quorum::new(&replicas, spec, "order", "order", index);
        Cand { replicas, quorum }
    }

    pub fn elector(&self, name: &str, seed: u64) -> Elector {
        self.elector_with(name, seed, true)
    }

    /// An elector with or without the lease check (`--no-lease-check`).
    pub fn elector_with(&self, name: &str, seed: u64, lease_check: bool) -> Elector {
        Elector::start(Candidate {
            domain: "order".into(),
            node: name.into(),
            replicas: self.replicas.clone(),
            floor: self.quorum.floor().clone(),
            ttl: TTL,
            rng: SharedRng::from_seed(seed),
            lease_check,
        })
    }
}

/// Who leads now, checking that at most one does.
pub fn leader_of(electors: &[Elector], round: usize) -> Option<(usize, u64)> {
    let leading: Vec<(usize, u64)> = electors
        .iter()
        .enumerate()
        .filter_map(|(i, e)| e.leadership().map(|t| (i, t)))
        .collect();
    assert!(
        leading.len() <= 1,
        "round {round}: two leaders at once: {leading:?}"
    );
    leading.first().copied()
}

/// Most reads of one replica's lease state before [`floors`] gives up (a read may time out on
/// a loaded machine: `STORE_TIMEOUT` is short on purpose).
const FLOOR_READS: usize = 10;

/// Every replica's floor in `domain`, each read again (up to [`FLOOR_READS`] times) while it
/// gets no answer; any other answer than the lease state fails at once.
pub async fn floors(replicas: &Replicas, domain: &str) -> Vec<u64> {
    let mut out = Vec::new();
    for i in 0..replicas.len() {
        let mut reads = 0;
        let v = loop {
            reads += 1;
            match replicas
                .get::<Value>(i, &format!("/lease/{domain}"), &[])
                .await
            {
                Reply::Ok(v) => break v,
                Reply::Failed(_) if reads < FLOOR_READS => {}
                other => panic!("lease state of replica {i} (read {reads}): {other:?}"),
            }
        };
        out.push(v["max_token"].as_u64().expect("max_token"));
    }
    out
}
