//! The nodes file of an `ssh` cluster (TOML), e.g. made from `vagrant ssh-config` or written by
//! `harness cluster up`:
//!
//! ```toml
//! known_hosts = "known_hosts"     # OpenSSH format; relative paths are from this file's folder
//! # workdir = "/tmp/harness"      # where runs live on the nodes (default)
//!
//! [[node]]
//! name = "n1"
//! host = "10.199.0.11"           # where sshd listens
//! port = 22
//! user = "root"
//! key = "client_key"             # unencrypted OpenSSH private key
//! # addr = "192.168.56.11"       # where the services listen (default: host)
//!
//! # [timing]                     # optional, for slow nodes (emulated VMs); each key optional
//! # lease_ttl_ms = 10000         # the pipeline's settings (docs/contracts.md §1)
//! # store_timeout_ms = 4000
//! # call_timeout_ms = 8000
//! # health_timeout_ms = 120000   # how long the harness waits for every role's /health
//! ```
//!
//! A top-level `vms_dir = "vms"` names a folder of VM records (console logs, boot times, as
//! `vagrant/vm.sh` writes them) that every run copies into its run directory's `vms/`.
//!
//! Every problem is reported as one line naming the file, the node and the field.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::remote::ssh::{HostKeyPolicy, SshTarget};

/// Most nodes a cluster may have (the run's `--nodes` range).
pub const MAX_NODES: usize = 9;
/// Where runs live on the nodes unless the file says otherwise.
pub const DEFAULT_WORKDIR: &str = "/tmp/harness";

/// One node of the file, paths resolved.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NodeEntry {
    /// Node name (`n1`).
    pub name: String,
    /// SSH host.
    pub host: String,
    /// SSH port.
    pub port: u16,
    /// SSH user.
    pub user: String,
    /// Private key file.
    pub key: PathBuf,
    /// Address the services listen on and the harness reaches them at.
    pub addr: String,
}

/// A parsed, checked nodes file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NodesFile {
    /// The file it came from.
    pub path: PathBuf,
    /// The known-hosts file, resolved.
    pub known_hosts: Option<PathBuf>,
    /// Base directory for runs on the nodes.
    pub workdir: String,
    /// The nodes, in file order.
    pub nodes: Vec<NodeEntry>,
    /// Timing for slow nodes; unset fields keep the pipeline's and the harness's defaults.
    pub timing: Timing,
    /// The folder of VM records copied into each run directory's `vms/`, resolved.
    pub vms_dir: Option<PathBuf>,
}

pub use formats::spec::Timing;

/// The bounds of each `[timing]` key: the pipeline's own for its settings (sut's config
/// refuses anything else), and up to 10 minutes for the harness's wait for health.
const TIMING_BOUNDS_MS: [(&str, u64, u64); 4] = [
    ("lease_ttl_ms", 100, 60_000),
    ("store_timeout_ms", 10, 60_000),
    ("call_timeout_ms", 10, 60_000),
    ("health_timeout_ms", 1_000, 600_000),
];

/// The harness's wait for health under `timing`.
pub fn health_timeout(timing: &Timing) -> std::time::Duration {
    timing.health_timeout_ms.map_or(
        crate::cluster::remote::HEALTH_TIMEOUT,
        std::time::Duration::from_millis,
    )
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTiming {
    lease_ttl_ms: Option<i64>,
    store_timeout_ms: Option<i64>,
    call_timeout_ms: Option<i64>,
    health_timeout_ms: Option<i64>,
}

fn check_timing(raw: RawTiming) -> Result<Timing, String> {
    let values = [
        raw.lease_ttl_ms,
        raw.store_timeout_ms,
        raw.call_timeout_ms,
        raw.health_timeout_ms,
    ];
    let mut checked = [None; 4];
    for (i, ((name, low, high), v)) in TIMING_BOUNDS_MS.iter().zip(values).enumerate() {
        if let Some(v) = v {
            let ms = u64::try_from(v)
                .ok()
                .filter(|ms| (*low..=*high).contains(ms))
                .ok_or_else(|| {
                    format!("[timing] {name} = {v}: must be between {low} and {high}")
                })?;
            checked[i] = Some(ms);
        }
    }
    Ok(Timing {
        lease_ttl_ms: checked[0],
        store_timeout_ms: checked[1],
        call_timeout_ms: checked[2],
        health_timeout_ms: checked[3],
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    known_hosts: Option<String>,
    workdir: Option<String>,
    vms_dir: Option<String>,
    #[serde(default)]
    timing: RawTiming,
    #[serde(default)]
    node: Vec<RawNode>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    name: Option<String>,
    host: Option<String>,
    port: Option<i64>,
    user: Option<String>,
    key: Option<String>,
    addr: Option<String>,
}

/// Why a nodes file was refused: one line naming the file.
#[derive(Debug, thiserror::Error)]
#[error("nodes file '{path}': {message}")]
pub struct NodesFileError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong, with line or node.
    pub message: String,
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl NodesFile {
    /// Reads and checks `path`. With `insecure` a missing `known_hosts` is allowed.
    pub fn load(path: &Path, insecure: bool) -> Result<NodesFile, NodesFileError> {
        let err = |message: String| NodesFileError {
            path: path.to_owned(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string().to_lowercase()))?;
        let raw: RawFile = toml::from_str(&text).map_err(|e| {
            let msg = e.message().trim().replace('`', "'").replace('\n', "; ");
            match e.span() {
                Some(s) => err(format!("line {}: {msg}", line_of(&text, s.start))),
                None => err(msg),
            }
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let resolve = |p: &str| -> PathBuf {
            let p = Path::new(p);
            if p.is_absolute() {
                p.to_owned()
            } else {
                base.join(p)
            }
        };
        let known_hosts = raw.known_hosts.as_deref().map(resolve);
        match &known_hosts {
            Some(k) if !k.is_file() => {
                return Err(err(format!("known_hosts '{}' does not exist", k.display())))
            }
            None if !insecure => {
                return Err(err(
                    "no known_hosts path (add one, or pass --insecure-ignore-host-keys)".into(),
                ))
            }
            _ => {}
        }
        let workdir = raw.workdir.unwrap_or_else(|| DEFAULT_WORKDIR.to_owned());
        if !workdir.starts_with('/') || workdir.contains(char::is_whitespace) || workdir == "/" {
            return Err(err(format!(
                "workdir '{workdir}' must be an absolute path without spaces, not /"
            )));
        }
        let timing = check_timing(raw.timing).map_err(err)?;
        let vms_dir = raw.vms_dir.as_deref().map(resolve);
        if let Some(d) = vms_dir.as_ref().filter(|d| !d.is_dir()) {
            return Err(err(format!("vms_dir '{}' is not a folder", d.display())));
        }
        if raw.node.is_empty() {
            return Err(err("no [[node]] entries".into()));
        }
        if raw.node.len() > MAX_NODES {
            return Err(err(format!(
                "{} nodes; at most {MAX_NODES} are supported",
                raw.node.len()
            )));
        }
        let mut names = BTreeSet::new();
        let mut nodes = Vec::new();
        for (i, n) in raw.node.into_iter().enumerate() {
            let entry = check_node(i + 1, n, &resolve).map_err(err)?;
            if !names.insert(entry.name.clone()) {
                return Err(err(format!("node name '{}' appears twice", entry.name)));
            }
            nodes.push(entry);
        }
        Ok(NodesFile {
            path: path.to_owned(),
            known_hosts,
            workdir,
            nodes,
            timing,
            vms_dir,
        })
    }

    /// SSH targets for every node, with host keys checked against `known_hosts` unless
    /// `insecure`.
    pub fn targets(&self, insecure: bool) -> Vec<SshTarget> {
        let policy = match (&self.known_hosts, insecure) {
            (Some(k), false) => HostKeyPolicy::KnownHosts(k.clone()),
            _ => HostKeyPolicy::InsecureIgnore,
        };
        self.nodes
            .iter()
            .map(|n| SshTarget {
                node: n.name.clone(),
                host: n.host.clone(),
                port: n.port,
                user: n.user.clone(),
                key: n.key.clone(),
                host_keys: policy.clone(),
            })
            .collect()
    }
}

/// Most files of a `vms_dir` a run copies.
pub const MAX_VM_RECORD_FILES: usize = 64;
/// Most bytes copied of one of them: a longer file (a console log of a VM that has run for days)
/// is copied from this many bytes before its end.
pub const MAX_VM_RECORD_BYTES: u64 = 16 * 1024 * 1024;

/// Copies the regular files of `from` (not its folders) into `to`, each at most its last
/// [`MAX_VM_RECORD_BYTES`], at most [`MAX_VM_RECORD_FILES`] of them in name order. Returns how
/// many were copied.
pub fn copy_vm_records(from: &Path, to: &Path) -> std::io::Result<usize> {
    use std::io::{Read, Seek, SeekFrom};
    let mut files: Vec<PathBuf> = std::fs::read_dir(from)?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.path())
        .collect();
    files.sort();
    files.truncate(MAX_VM_RECORD_FILES);
    std::fs::create_dir_all(to)?;
    for f in &files {
        let mut src = std::fs::File::open(f)?;
        let len = src.metadata()?.len();
        src.seek(SeekFrom::Start(len.saturating_sub(MAX_VM_RECORD_BYTES)))?;
        let name = f.file_name().unwrap_or_default();
        let mut dst = std::fs::File::create(to.join(name))?;
        std::io::copy(&mut src.take(MAX_VM_RECORD_BYTES), &mut dst)?;
    }
    Ok(files.len())
}

fn check_node(
    index: usize,
    n: RawNode,
    resolve: &dyn Fn(&str) -> PathBuf,
) -> Result<NodeEntry, String> {
    let label = match &n.name {
        Some(name) => format!("node {index} ('{name}')"),
        None => format!("node {index}"),
    };
    let missing = |field: &str| format!("{label}: missing field '{field}'");
    let name = n.name.clone().ok_or_else(|| missing("name"))?;
    if !valid_name(&name) {
        return Err(format!(
            "{label}: name must be letters, digits, '-' or '_' (at most 32)"
        ));
    }
    let host = n.host.ok_or_else(|| missing("host"))?;
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(format!("{label}: host '{host}' is not a host name"));
    }
    let port = n.port.ok_or_else(|| missing("port"))?;
    let port = u16::try_from(port)
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("{label}: port {port} is not between 1 and 65535"))?;
    let user = n.user.ok_or_else(|| missing("user"))?;
    if user.is_empty() {
        return Err(format!("{label}: user is empty"));
    }
    let key = resolve(&n.key.ok_or_else(|| missing("key"))?);
    if !key.is_file() {
        return Err(format!("{label}: key '{}' does not exist", key.display()));
    }
    if let Err(e) = russh::keys::load_secret_key(&key, None) {
        return Err(format!(
            "{label}: key '{}' is not an unencrypted OpenSSH private key: {}",
            key.display(),
            e.to_string().to_lowercase()
        ));
    }
    let addr = n.addr.unwrap_or_else(|| host.clone());
    if addr.is_empty() || addr.contains(char::is_whitespace) {
        return Err(format!("{label}: addr '{addr}' is not an address"));
    }
    Ok(NodeEntry {
        name,
        host,
        port,
        user,
        key,
        addr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A throwaway ed25519 key made for these tests; it opens nothing.
    const TEST_KEY: &str = "-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
QyNTUxOQAAACDbi1tfOk//SGYoj+Yw3uY39ZTUHiUmITwazYY6mVA7kAAAAJiShOvhkoTr
4QAAAAtzc2gtZWQyNTUxOQAAACDbi1tfOk//SGYoj+Yw3uY39ZTUHiUmITwazYY6mVA7kA
AAAED1yZJ2z3O5nvRwOXU7LaBSt9ol8gO+Pax8ecBEj26lPtuLW186T/9IZiiP5jDe5jf1
lNQeJSYhPBrNhjqZUDuQAAAAEnRocm93YXdheS10ZXN0LWtleQECAw==
-----END OPENSSH PRIVATE KEY-----
";

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write");
        p
    }

    /// Proves a good file parses with paths resolved next to it, and that each kind of mistake is
    /// one line naming the file and the culprit.
    #[test]
    fn parses_and_names_mistakes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        write(d, "key", TEST_KEY);
        write(d, "junk", "x");
        write(d, "kh", "");
        let good = "known_hosts = \"kh\"\n[[node]]\nname = \"n1\"\nhost = \"10.0.0.1\"\nport = 22\nuser = \"root\"\nkey = \"key\"\n";
        let f = NodesFile::load(&write(d, "good.toml", good), false).expect("parses");
        assert_eq!(f.nodes[0].key, d.join("key"));
        assert_eq!(f.nodes[0].addr, "10.0.0.1");
        assert_eq!(f.known_hosts, Some(d.join("kh")));
        assert_eq!(f.workdir, DEFAULT_WORKDIR);

        let cases = [
            (good.replace("host = \"10.0.0.1\"\n", ""), "node 1 ('n1'): missing field 'host'"),
            (good.replace("port = 22", "port = 70000"), "port 70000"),
            (good.replace("key = \"key\"", "key = \"nokey\""), "does not exist"),
            (good.replace("key = \"key\"", "key = \"junk\""), "not an unencrypted OpenSSH private key"),
            (good.replace("user", "usr"), "line 6: unknown field 'usr'"),
            (good.replace("kh", "nokh"), "known_hosts"),
            (format!("{good}[[node]]\nname = \"n1\"\nhost = \"h\"\nport = 22\nuser = \"u\"\nkey = \"key\"\n"), "'n1' appears twice"),
            ("known_hosts = \"kh\"\n".to_owned(), "no [[node]]"),
            ("[[node\n".to_owned(), "line 1"),
            (format!("vms_dir = \"novms\"\n{good}"), "vms_dir"),
            (format!("{good}[timing]\nlease_ttl_ms = 50\n"), "[timing] lease_ttl_ms = 50: must be between 100 and 60000"),
            (format!("{good}[timing]\ncall_timeout_ms = -1\n"), "call_timeout_ms = -1"),
            (format!("{good}[timing]\nhealth_timeout_ms = 700000\n"), "between 1000 and 600000"),
            (format!("{good}[timing]\nlease_ttl = 5000\n"), "unknown field 'lease_ttl'"),
        ];
        assert_eq!(f.timing, Timing::default());
        assert_eq!(f.vms_dir, None);
        for (text, want) in cases {
            let e = NodesFile::load(&write(d, "bad.toml", &text), false)
                .expect_err(&text)
                .to_string();
            assert!(e.contains(want), "{e:?} lacks {want:?}");
            assert!(e.contains("bad.toml") && !e.contains('\n'), "{e:?}");
        }
    }

    /// Proves a `[timing]` table and `vms_dir` parse (the folder resolved next to the file), the
    /// pipeline gets only its own settings, and the harness's wait for health follows the file.
    #[test]
    fn timing_and_vm_records() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        write(d, "key", TEST_KEY);
        write(d, "kh", "");
        std::fs::create_dir(d.join("vms")).expect("mkdir");
        let text = "known_hosts = \"kh\"\nvms_dir = \"vms\"\n[[node]]\nname = \"n1\"\nhost = \"h\"\nport = 22\nuser = \"u\"\nkey = \"key\"\n\n[timing]\nlease_ttl_ms = 10000\nstore_timeout_ms = 4000\nhealth_timeout_ms = 120000\n";
        let f = NodesFile::load(&write(d, "nodes.toml", text), false).expect("parses");
        assert_eq!(f.vms_dir, Some(d.join("vms")));
        assert_eq!(
            f.timing,
            Timing {
                lease_ttl_ms: Some(10_000),
                store_timeout_ms: Some(4_000),
                call_timeout_ms: None,
                health_timeout_ms: Some(120_000),
            }
        );
        assert_eq!(
            f.timing.pipeline_settings(),
            vec![("lease_ttl_ms", 10_000), ("store_timeout_ms", 4_000)]
        );
        assert_eq!(
            health_timeout(&f.timing),
            std::time::Duration::from_secs(120)
        );
        assert_eq!(
            health_timeout(&Timing::default()),
            crate::cluster::remote::HEALTH_TIMEOUT
        );
    }

    /// Proves VM records are copied file by file, folders left out, and a file longer than the
    /// bound copied as its last bytes.
    #[test]
    fn vm_records_are_copied_with_a_bound() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (from, to) = (dir.path().join("vms"), dir.path().join("run/vms"));
        std::fs::create_dir_all(from.join("sub")).expect("mkdir");
        std::fs::write(from.join("boot.json"), "{}").expect("write");
        let long = MAX_VM_RECORD_BYTES as usize + 10;
        let mut big = vec![b'a'; long];
        big[long - 1] = b'z';
        std::fs::write(from.join("n1.console.log"), &big).expect("write");
        assert_eq!(copy_vm_records(&from, &to).expect("copies"), 2);
        assert_eq!(
            std::fs::read_to_string(to.join("boot.json")).expect("read"),
            "{}"
        );
        let copied = std::fs::read(to.join("n1.console.log")).expect("read");
        assert_eq!(copied.len() as u64, MAX_VM_RECORD_BYTES);
        assert_eq!(copied.last(), Some(&b'z'), "the end is kept");
        assert!(!to.join("sub").exists());
        assert!(copy_vm_records(&dir.path().join("none"), &to).is_err());
    }
}
