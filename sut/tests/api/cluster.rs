//! A cluster of real `pipeline` processes on loopback for the tests: per-node config files as
//! the harness writes them, a cluster secret from the OS RNG in a file of its own, stores
//! started first, SIGKILL and restart of any role, and each role's log (JSON lines on stderr)
//! kept in a file the test can read. The test client sends the secret unless told otherwise.

// Several test binaries share this module, each using part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use pipeline::auth::{ClusterSecret, PeerClient};
use rand::RngCore;
use serde_json::{json, Value};

/// How long a role gets to answer `/health`.
const HEALTH_WAIT: Duration = Duration::from_secs(30);
/// Per-request timeout of the test client.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// The `Authorization` a test request carries.
#[derive(Debug, Clone, Copy)]
pub enum Auth<'a> {
    /// `Bearer <the cluster secret>`.
    Cluster,
    /// None at all.
    Missing,
    /// `Bearer <this>`.
    Bearer(&'a str),
}

/// A fresh secret: 32 bytes of the OS RNG, hex.
pub fn fresh_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What to start.
pub struct Spec {
    nodes: usize,
    roles: Vec<&'static str>,
    settings: Value,
    flags: BTreeMap<&'static str, Vec<String>>,
}

impl Spec {
    /// `nodes` nodes running `roles` (store is always started first).
    pub fn new(nodes: usize, roles: &[&'static str]) -> Spec {
        Spec {
            nodes,
            roles: roles.to_vec(),
            settings: json!({}),
            flags: BTreeMap::new(),
        }
    }

    /// The config's `settings`.
    pub fn settings(mut self, settings: Value) -> Spec {
        self.settings = settings;
        self
    }

    /// An extra flag for every process of `role`.
    pub fn flag(mut self, role: &'static str, flag: &str) -> Spec {
        self.flags.entry(role).or_default().push(flag.to_owned());
        self
    }

    /// Starts the cluster and waits until every role answers `/health`.
    pub fn start(self) -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let nodes: Vec<String> = (1..=self.nodes).map(|i| format!("n{i}")).collect();
        let mut roles = vec!["store"];
        roles.extend(self.roles.iter().filter(|r| **r != "store"));
        let mut ports = BTreeMap::new();
        let holders: Vec<TcpListener> = (0..nodes.len() * roles.len())
            .map(|_| TcpListener::bind("127.0.0.1:0").expect("port"))
            .collect();
        let mut it = holders.iter();
        for n in &nodes {
            for r in &roles {
                let port = it.next().expect("port").local_addr().expect("addr").port();
                ports.insert((n.clone(), (*r).to_owned()), port);
            }
        }
        drop(holders);
        let cluster = Cluster {
            secret: Mutex::new(fresh_secret()),
            dir,
            nodes,
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            ports,
            flags: self.flags,
            procs: Mutex::new(BTreeMap::new()),
            http: reqwest::blocking::Client::builder()
                .timeout(CLIENT_TIMEOUT)
                .build()
                .expect("client"),
        };
        cluster.write_configs(&self.settings);
        let first = cluster.secret();
        cluster.write_secret_file(&first);
        for role in &roles {
            for n in cluster.nodes.clone() {
                cluster.spawn(&n, role);
            }
            for n in cluster.nodes.clone() {
                cluster.wait_healthy(&n, role);
            }
        }
        cluster
    }
}

/// A running cluster; every process is killed on drop.
pub struct Cluster {
    dir: tempfile::TempDir,
    /// Node names.
    pub nodes: Vec<String>,
    roles: Vec<String>,
    ports: BTreeMap<(String, String), u16>,
    flags: BTreeMap<&'static str, Vec<String>>,
    procs: Mutex<BTreeMap<(String, String), Child>>,
    http: reqwest::blocking::Client,
    /// The secret the test client sends.
    secret: Mutex<String>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Ok(mut procs) = self.procs.lock() {
            for child in procs.values_mut() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

impl Cluster {
    fn config_path(&self, node: &str) -> PathBuf {
        self.dir.path().join(node).join("config.json")
    }

    fn secret_path(&self) -> PathBuf {
        self.dir.path().join("secret")
    }

    /// Replaces the secret file every role reads at start (mode 0600) with `text`.
    pub fn write_secret_file(&self, text: &str) {
        let path = self.secret_path();
        let tmp = path.with_extension("tmp");
        let mut f = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&tmp)
            .expect("secret file");
        f.write_all(text.as_bytes()).expect("secret written");
        std::fs::rename(&tmp, &path).expect("secret file replaced");
    }

    /// The secret the test client sends.
    pub fn secret(&self) -> String {
        self.secret.lock().expect("secret").clone()
    }

    /// Makes the test client send `secret` from now on.
    pub fn use_secret(&self, secret: &str) {
        *self.secret.lock().expect("secret") = secret.to_owned();
    }

    /// How the library's clients reach the roles: with the secret the test client sends.
    pub fn peers(&self) -> PeerClient {
        let secret = ClusterSecret::from_text(&self.secret()).expect("secret parses");
        PeerClient::new(secret, Duration::from_secs(20))
    }

    fn log_path(&self, node: &str, role: &str) -> PathBuf {
        self.dir.path().join(node).join(format!("{role}.log"))
    }

    fn write_configs(&self, settings: &Value) {
        let mut peers = serde_json::Map::new();
        for r in &self.roles {
            let by_node: serde_json::Map<String, Value> = self
                .nodes
                .iter()
                .map(|n| (n.clone(), json!(format!("127.0.0.1:{}", self.port(n, r)))))
                .collect();
            peers.insert(r.clone(), Value::Object(by_node));
        }
        for n in &self.nodes {
            let listen: serde_json::Map<String, Value> = self
                .roles
                .iter()
                .map(|r| (r.clone(), json!(format!("127.0.0.1:{}", self.port(n, r)))))
                .collect();
            let cfg = json!({
                "node": n, "nodes": self.nodes, "listen": listen, "peers": peers,
                "settings": settings,
            });
            std::fs::create_dir_all(self.dir.path().join(n)).expect("node dir");
            std::fs::write(
                self.config_path(n),
                serde_json::to_vec_pretty(&cfg).expect("json"),
            )
            .expect("config");
        }
    }

    fn port(&self, node: &str, role: &str) -> u16 {
        self.ports[&(node.to_owned(), role.to_owned())]
    }

    /// Base URL of `role` on `node`.
    pub fn url(&self, node: &str, role: &str) -> String {
        format!("http://127.0.0.1:{}", self.port(node, role))
    }

    /// `(node, base URL)` of every store replica, in node order.
    pub fn store_replicas(&self) -> Vec<(String, String)> {
        self.nodes
            .iter()
            .map(|n| (n.clone(), self.url(n, "store")))
            .collect()
    }

    fn spawn(&self, node: &str, role: &str) {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(node, role))
            .expect("log file");
        let data = self.dir.path().join(node).join("data").join(role);
        let child = Command::new(env!("CARGO_BIN_EXE_pipeline"))
            .arg(role)
            .args(["--node", node])
            .arg("--config")
            .arg(self.config_path(node))
            .arg("--secret-file")
            .arg(self.secret_path())
            .arg("--data-dir")
            .arg(&data)
            .args(self.flags.get(role).cloned().unwrap_or_default())
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("pipeline starts");
        self.procs
            .lock()
            .expect("procs")
            .insert((node.to_owned(), role.to_owned()), child);
    }

    fn wait_healthy(&self, node: &str, role: &str) {
        let url = format!("{}/health", self.url(node, role));
        let end = Instant::now() + HEALTH_WAIT;
        while Instant::now() < end {
            if let Some(child) = self
                .procs
                .lock()
                .expect("procs")
                .get_mut(&(node.to_owned(), role.to_owned()))
            {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "{node}/{role} exited with {status}: {}",
                        self.log(node, role)
                    );
                }
            }
            if self
                .http
                .get(&url)
                .send()
                .is_ok_and(|r| r.status().is_success())
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{node}/{role} did not answer {url}");
    }

    /// Sends `signal` to `role` on `node` (SIGSTOP and SIGCONT for pauses).
    pub fn signal(&self, node: &str, role: &str, signal: nix::sys::signal::Signal) {
        let procs = self.procs.lock().expect("procs");
        let child = procs
            .get(&(node.to_owned(), role.to_owned()))
            .unwrap_or_else(|| panic!("{node}/{role} is not running"));
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
        nix::sys::signal::kill(pid, signal).expect("signal delivered");
    }

    /// SIGKILLs `role` on `node` and reaps it.
    pub fn kill(&self, node: &str, role: &str) {
        if let Some(mut child) = self
            .procs
            .lock()
            .expect("procs")
            .remove(&(node.to_owned(), role.to_owned()))
        {
            child.kill().expect("sigkill");
            child.wait().expect("reaped");
        }
    }

    /// Starts `role` on `node` again (same config, data and flags) and waits for health.
    pub fn restart(&self, node: &str, role: &str) {
        self.spawn(node, role);
        self.wait_healthy(node, role);
    }

    /// The role's log so far.
    pub fn log(&self, node: &str, role: &str) -> String {
        std::fs::read_to_string(self.log_path(node, role)).unwrap_or_default()
    }

    /// Log lines of `role` on every node whose message is `message`, parsed.
    pub fn log_lines(&self, role: &str, message: &str) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        for n in &self.nodes {
            for line in self.log(n, role).lines() {
                let Ok(v) = serde_json::from_str::<Value>(line) else {
                    continue;
                };
                if v["fields"]["message"] == message {
                    out.push((n.clone(), v["fields"].clone()));
                }
            }
        }
        out
    }

    /// POSTs `body` (raw text) with an optional idempotency key; status and JSON body.
    pub fn post(&self, url: &str, key: Option<&str>, body: &str) -> (u16, Value) {
        self.post_as(url, key, body, Auth::Cluster)
    }

    /// [`Cluster::post`] to a leader-routed path, sent again (up to 20 s) while the answer is
    /// 503 `not_leader`, which changes nothing: the nodes' views of a new leader settle a
    /// moment apart, and a forwarded request that meets a node no longer (or not yet) leading
    /// is refused rather than forwarded twice.
    pub fn post_led(&self, url: &str, key: Option<&str>, body: &str) -> (u16, Value) {
        let mut last = self.post(url, key, body);
        let end = Instant::now() + Duration::from_secs(20);
        while last.0 == 503 && last.1["error"] == "not_leader" && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(100));
            last = self.post(url, key, body);
        }
        last
    }

    /// [`Cluster::post`] with the given `Authorization`.
    pub fn post_as(
        &self,
        url: &str,
        key: Option<&str>,
        body: &str,
        auth: Auth<'_>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(k) = key {
            req = req.header("idempotency-key", k);
        }
        self.send(req, auth)
    }

    /// GETs `url`; status and JSON body.
    pub fn get(&self, url: &str) -> (u16, Value) {
        self.get_as(url, Auth::Cluster)
    }

    /// [`Cluster::get`] with the given `Authorization`.
    pub fn get_as(&self, url: &str, auth: Auth<'_>) -> (u16, Value) {
        self.send(self.http.get(url), auth)
    }

    fn send(&self, req: reqwest::blocking::RequestBuilder, auth: Auth<'_>) -> (u16, Value) {
        let req = match auth {
            Auth::Cluster => req.bearer_auth(self.secret()),
            Auth::Missing => req,
            Auth::Bearer(token) => req.bearer_auth(token),
        };
        match req.send() {
            Ok(resp) => {
                let status = resp.status().as_u16();
                (status, resp.json().unwrap_or(Value::Null))
            }
            Err(e) => (0, json!({"transport_error": e.to_string()})),
        }
    }

    /// Every item of a paginated admin read, following `next`.
    pub fn admin_all(&self, node: &str, role: &str, path: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..1000 {
            let mut url = format!("{}{path}?limit=200", self.url(node, role));
            if let Some(a) = &after {
                url.push_str(&format!("&after={a}"));
            }
            let (s, body) = self.get(&url);
            assert_eq!(s, 200, "{url}: {body}");
            out.extend(body["items"].as_array().cloned().unwrap_or_default());
            match body["next"].as_str() {
                Some(n) => after = Some(n.to_owned()),
                None => return out,
            }
        }
        panic!("{path}: too many pages");
    }

    /// Polls `cond` every 100 ms until true or `limit` passes; returns the last value.
    pub fn wait_until(&self, limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if cond() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        cond()
    }

    /// The leader of `role` as its node reports it: (leader node, token).
    pub fn leader(&self, role: &str) -> Option<(String, u64)> {
        for n in &self.nodes {
            let (s, b) = self.get(&format!("{}/admin/leader", self.url(n, role)));
            if s == 200 && b["is_leader"] == true {
                return Some((n.clone(), b["token"].as_u64().unwrap_or(0)));
            }
        }
        None
    }

    /// Waits for a leader of `role` (other than `not`), up to 20 s.
    pub fn await_leader(&self, role: &str, not: Option<&str>) -> (String, u64) {
        let mut found = None;
        self.wait_until(Duration::from_secs(20), || {
            found = self.leader(role).filter(|(n, _)| Some(n.as_str()) != not);
            found.is_some()
        });
        found.unwrap_or_else(|| panic!("no {role} leader appeared"))
    }
}

/// A runtime for calling the library's async API from a plain test.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}
