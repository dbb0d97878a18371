//! OpenSSH servers reached with russh: public-key auth, host keys checked against a known-hosts
//! file (or explicitly not checked), commands on session channels, transfers as `cat` over a
//! channel's stdin and stdout (no sftp subsystem needed).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use russh::client::{self, Handle};
use russh::keys::{HashAlg, PrivateKeyWithHashAlg, PublicKey};
use russh::ChannelMsg;
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;

use super::{quote, short, ExecOutput, Remote, RemoteError, MAX_OUTPUT_BYTES};

/// How long the TCP connect, the key exchange and authentication may take together.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// sshd allows 10 sessions per connection (`MaxSessions`); stay below it.
const MAX_CHANNELS: usize = 8;
/// Slowest transfer rate tolerated before an upload or download times out.
const MIN_TRANSFER_BYTES_PER_S: u64 = 1024 * 1024;
/// Floor of every transfer timeout.
const MIN_TRANSFER_TIMEOUT: Duration = Duration::from_secs(30);

/// How the server's host key is judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyPolicy {
    /// Accept only a key recorded for `[host]:port` in this OpenSSH known-hosts file.
    KnownHosts(PathBuf),
    /// Accept any key (`--insecure-ignore-host-keys`).
    InsecureIgnore,
}

/// Where and as whom to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    /// Node name for messages.
    pub node: String,
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Login user.
    pub user: String,
    /// Private key file (OpenSSH format, unencrypted).
    pub key: PathBuf,
    /// How host keys are checked.
    pub host_keys: HostKeyPolicy,
}

impl SshTarget {
    /// `host:port`, bracketing IPv6 addresses.
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

#[derive(Debug)]
enum HandlerError {
    Ssh(russh::Error),
    HostKey(RemoteError),
}

impl From<russh::Error> for HandlerError {
    fn from(e: russh::Error) -> Self {
        HandlerError::Ssh(e)
    }
}

struct Checker {
    target: SshTarget,
}

impl Checker {
    fn judge(&self, key: &PublicKey) -> Result<(), RemoteError> {
        let HostKeyPolicy::KnownHosts(file) = &self.target.host_keys else {
            return Ok(());
        };
        let t = &self.target;
        match russh::keys::check_known_hosts_path(&t.host, t.port, key, file) {
            Ok(true) => Ok(()),
            Ok(false) => Err(RemoteError::HostKeyUnknown {
                node: t.node.clone(),
                addr: t.addr(),
                known_hosts: file.clone(),
                fingerprint: key.fingerprint(HashAlg::Sha256).to_string(),
            }),
            Err(russh::keys::Error::KeyChanged { line }) => Err(RemoteError::HostKeyMismatch {
                node: t.node.clone(),
                addr: t.addr(),
                known_hosts: file.clone(),
                line,
            }),
            Err(e) => Err(RemoteError::Auth {
                node: t.node.clone(),
                addr: t.addr(),
                message: format!("reading {}: {e}", file.display()),
            }),
        }
    }
}

impl client::Handler for Checker {
    type Error = HandlerError;

    async fn check_server_key(
        &mut self,
        server: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let key = match server {
            russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } => key,
            russh::keys::PublicKeyOrCertificate::Certificate(c) => {
                return Err(HandlerError::HostKey(RemoteError::Auth {
                    node: self.target.node.clone(),
                    addr: self.target.addr(),
                    message: format!(
                        "the server offered a host certificate ({}); only plain host keys are supported",
                        c.algorithm()
                    ),
                }))
            }
        };
        self.judge(key).map_err(HandlerError::HostKey)?;
        Ok(true)
    }
}

/// One authenticated SSH connection to a node. Commands run on their own channels, several at
/// once (at most [`MAX_CHANNELS`]).
pub struct SshRemote {
    target: SshTarget,
    handle: Handle<Checker>,
    channels: Semaphore,
}

impl std::fmt::Debug for SshRemote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshRemote")
            .field("target", &self.target)
            .finish()
    }
}

enum Sink<'a> {
    Memory(&'a mut Vec<u8>),
    File(&'a mut tokio::fs::File),
}

impl SshRemote {
    /// Connects, checks the host key and authenticates with the target's key.
    pub async fn connect(target: &SshTarget) -> Result<SshRemote, RemoteError> {
        match tokio::time::timeout(CONNECT_TIMEOUT, Self::connect_inner(target)).await {
            Ok(r) => r,
            Err(_) => Err(RemoteError::Connect {
                node: target.node.clone(),
                addr: target.addr(),
                message: format!("no ssh session within {CONNECT_TIMEOUT:?}"),
            }),
        }
    }

    async fn connect_inner(target: &SshTarget) -> Result<SshRemote, RemoteError> {
        let auth_err = |message: String| RemoteError::Auth {
            node: target.node.clone(),
            addr: target.addr(),
            message,
        };
        let key = russh::keys::load_secret_key(&target.key, None)
            .map_err(|e| auth_err(format!("private key {}: {e}", target.key.display())))?;
        let config = Arc::new(client::Config {
            keepalive_interval: Some(Duration::from_secs(15)),
            keepalive_max: 4,
            nodelay: true,
            ..client::Config::default()
        });
        let checker = Checker {
            target: target.clone(),
        };
        let mut handle = client::connect(config, (target.host.as_str(), target.port), checker)
            .await
            .map_err(|e| match e {
                HandlerError::HostKey(e) => e,
                HandlerError::Ssh(russh::Error::IO(io)) => RemoteError::Connect {
                    node: target.node.clone(),
                    addr: target.addr(),
                    message: io.to_string().to_lowercase(),
                },
                HandlerError::Ssh(e) => RemoteError::Connect {
                    node: target.node.clone(),
                    addr: target.addr(),
                    message: e.to_string(),
                },
            })?;
        let hash = if matches!(key.algorithm(), russh::keys::Algorithm::Rsa { .. }) {
            handle
                .best_supported_rsa_hash()
                .await
                .map_err(|e| auth_err(e.to_string()))?
                .flatten()
        } else {
            None
        };
        let auth = handle
            .authenticate_publickey(
                target.user.clone(),
                PrivateKeyWithHashAlg::new(Arc::new(key), hash),
            )
            .await
            .map_err(|e| auth_err(format!("authenticating: {e}")))?;
        if !auth.success() {
            return Err(auth_err(format!(
                "public-key login as '{}' with {} was refused",
                target.user,
                target.key.display()
            )));
        }
        Ok(SshRemote {
            target: target.clone(),
            handle,
            channels: Semaphore::new(MAX_CHANNELS),
        })
    }

    /// The target this remote is connected to.
    pub fn target(&self) -> &SshTarget {
        &self.target
    }

    fn session_err(&self, e: impl std::fmt::Display) -> RemoteError {
        RemoteError::Session {
            node: self.target.node.clone(),
            message: e.to_string(),
        }
    }

    /// Runs `command`, feeding it `stdin` if given, gathering stdout into `sink`. Returns the
    /// exit code and stderr.
    async fn channel(
        &self,
        command: &str,
        stdin: Option<tokio::fs::File>,
        mut sink: Sink<'_>,
    ) -> Result<(Option<i32>, Vec<u8>), RemoteError> {
        let _permit = self
            .channels
            .acquire()
            .await
            .map_err(|e| self.session_err(e))?;
        let mut ch = self
            .handle
            .channel_open_session()
            .await
            .map_err(|e| self.session_err(e))?;
        ch.exec(true, command)
            .await
            .map_err(|e| self.session_err(e))?;
        if let Some(file) = stdin {
            ch.data(file).await.map_err(|e| self.session_err(e))?;
        }
        ch.eof().await.map_err(|e| self.session_err(e))?;
        let (mut code, mut stderr) = (None, Vec::new());
        while let Some(msg) = ch.wait().await {
            match msg {
                ChannelMsg::Data { data } => match &mut sink {
                    Sink::Memory(buf) => {
                        let room = MAX_OUTPUT_BYTES.saturating_sub(buf.len());
                        buf.extend_from_slice(&data[..data.len().min(room)]);
                    }
                    Sink::File(f) => f.write_all(&data).await.map_err(|e| self.session_err(e))?,
                },
                ChannelMsg::ExtendedData { data, ext: 1 } => {
                    let room = MAX_OUTPUT_BYTES.saturating_sub(stderr.len());
                    stderr.extend_from_slice(&data[..data.len().min(room)]);
                }
                ChannelMsg::ExitStatus { exit_status } => {
                    code = Some(i32::try_from(exit_status).unwrap_or(i32::MAX));
                }
                ChannelMsg::ExitSignal { .. } => code = None,
                ChannelMsg::Close => break,
                _ => {}
            }
        }
        Ok((code, stderr))
    }

    fn transfer_timeout(bytes: u64) -> Duration {
        MIN_TRANSFER_TIMEOUT + Duration::from_secs(bytes / MIN_TRANSFER_BYTES_PER_S)
    }

    fn local_io(&self, path: &Path, source: std::io::Error) -> RemoteError {
        RemoteError::LocalIo {
            node: self.target.node.clone(),
            path: path.to_owned(),
            source,
        }
    }

    fn timeout_err(&self, command: &str, timeout: Duration) -> RemoteError {
        RemoteError::Timeout {
            node: self.target.node.clone(),
            command: short(command),
            timeout,
        }
    }
}

#[async_trait]
impl Remote for SshRemote {
    fn node(&self) -> &str {
        &self.target.node
    }

    async fn exec(&self, command: &str, timeout: Duration) -> Result<ExecOutput, RemoteError> {
        let mut stdout = Vec::new();
        let run = self.channel(command, None, Sink::Memory(&mut stdout));
        let (code, stderr) = tokio::time::timeout(timeout, run)
            .await
            .map_err(|_| self.timeout_err(command, timeout))??;
        Ok(ExecOutput {
            code,
            stdout,
            stderr,
        })
    }

    async fn upload(&self, local: &Path, remote: &str, mode: u32) -> Result<(), RemoteError> {
        let file = tokio::fs::File::open(local)
            .await
            .map_err(|e| self.local_io(local, e))?;
        let size = file
            .metadata()
            .await
            .map_err(|e| self.local_io(local, e))?
            .len();
        let tmp = quote(&format!("{remote}.upload-tmp"));
        let parent = Path::new(remote)
            .parent()
            .and_then(|p| p.to_str())
            .filter(|p| !p.is_empty())
            .unwrap_or(".");
        let command = format!(
            "mkdir -p {parent} && cat > {tmp} && test \"$(wc -c < {tmp})\" -eq {size} && chmod {mode:o} {tmp} && mv -f {tmp} {dest}",
            parent = quote(parent),
            dest = quote(remote)
        );
        let timeout = Self::transfer_timeout(size);
        let mut ignored = Vec::new();
        let run = self.channel(&command, Some(file), Sink::Memory(&mut ignored));
        let (code, stderr) = tokio::time::timeout(timeout, run)
            .await
            .map_err(|_| self.timeout_err(&command, timeout))??;
        if code != Some(0) {
            return Err(RemoteError::Transfer {
                node: self.target.node.clone(),
                what: "upload to",
                path: remote.to_owned(),
                message: last_line(&stderr, code),
            });
        }
        Ok(())
    }

    async fn download(&self, remote: &str, local: &Path) -> Result<(), RemoteError> {
        let mut file = tokio::fs::File::create(local)
            .await
            .map_err(|e| self.local_io(local, e))?;
        let command = format!("cat {}", quote(remote));
        // The size is unknown up front; allow what a 256 MiB file needs.
        let timeout = Self::transfer_timeout(256 * 1024 * 1024);
        let run = self.channel(&command, None, Sink::File(&mut file));
        let (code, stderr) = tokio::time::timeout(timeout, run)
            .await
            .map_err(|_| self.timeout_err(&command, timeout))??;
        file.flush().await.map_err(|e| self.local_io(local, e))?;
        if code != Some(0) {
            return Err(RemoteError::Transfer {
                node: self.target.node.clone(),
                what: "download of",
                path: remote.to_owned(),
                message: last_line(&stderr, code),
            });
        }
        Ok(())
    }
}

fn last_line(stderr: &[u8], code: Option<i32>) -> String {
    let text = String::from_utf8_lossy(stderr);
    match text.lines().rev().find(|l| !l.trim().is_empty()) {
        Some(l) => l.trim().to_owned(),
        None => format!(
            "exit {}",
            code.map_or_else(|| "by signal".into(), |c| c.to_string())
        ),
    }
}
