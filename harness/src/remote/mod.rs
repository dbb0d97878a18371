//! Remotes: how the harness runs commands and moves files on a node (Jepsen's `control`).
//!
//! A [`Remote`] executes a shell command with a timeout and reports its exit code, stdout and
//! stderr; it uploads and downloads files. Two implementations: [`local::LocalRemote`] (a shell
//! on this machine) and [`ssh::SshRemote`] (OpenSSH servers reached with russh, public-key auth,
//! host keys checked against a known-hosts file).
//!
//! ```no_run
//! # async fn demo() -> Result<(), harness::remote::RemoteError> {
//! use std::time::Duration;
//! use harness::remote::{local::LocalRemote, Remote};
//! let r = LocalRemote::new("n1");
//! let out = r.exec("echo hi; exit 3", Duration::from_secs(5)).await?;
//! assert_eq!((out.code, out.stdout_text().trim()), (Some(3), "hi"));
//! # Ok(()) }
//! ```

pub mod local;
pub mod ssh;

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;

/// Upper bound on what one command may print on stdout or stderr before it is cut off. Commands
/// the harness runs print little; downloads go through [`Remote::download`].
pub const MAX_OUTPUT_BYTES: usize = 16 * 1024 * 1024;

/// What a command did: the nemesis's one shape.
pub use nemesis::ExecOutput;

/// Why a remote operation failed. Every variant names the node.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The TCP connection could not be made.
    #[error("{node} ({addr}): cannot connect: {message}")]
    Connect {
        /// Node name.
        node: String,
        /// `host:port`.
        addr: String,
        /// Why.
        message: String,
    },
    /// The server's host key differs from the one recorded for it.
    #[error("{node} ({addr}): host key does not match {known_hosts} line {line}; refusing to connect (someone may be intercepting, or the node was rebuilt: remove the old line)")]
    HostKeyMismatch {
        /// Node name.
        node: String,
        /// `host:port`.
        addr: String,
        /// The known-hosts file.
        known_hosts: PathBuf,
        /// The line holding the recorded key.
        line: usize,
    },
    /// The server's host key is not in the known-hosts file.
    #[error("{node} ({addr}): host key {fingerprint} is not in {known_hosts}; refusing to connect (add it, or pass --insecure-ignore-host-keys)")]
    HostKeyUnknown {
        /// Node name.
        node: String,
        /// `host:port`.
        addr: String,
        /// The known-hosts file.
        known_hosts: PathBuf,
        /// SHA256 fingerprint of the key the server offered.
        fingerprint: String,
    },
    /// Public-key authentication failed or the key could not be read.
    #[error("{node} ({addr}): {message}")]
    Auth {
        /// Node name.
        node: String,
        /// `host:port`.
        addr: String,
        /// Why.
        message: String,
    },
    /// The command did not finish in time (it may still be running).
    #[error("{node}: command timed out after {timeout:?}: {command}")]
    Timeout {
        /// Node name.
        node: String,
        /// The command (shortened).
        command: String,
        /// The timeout.
        timeout: Duration,
    },
    /// The SSH session broke.
    #[error("{node}: ssh: {message}")]
    Session {
        /// Node name.
        node: String,
        /// What russh said.
        message: String,
    },
    /// A local file could not be read or written.
    #[error("{node}: {path}: {source}")]
    LocalIo {
        /// Node name.
        node: String,
        /// The local file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A transfer's remote side failed.
    #[error("{node}: {what} {path}: {message}")]
    Transfer {
        /// Node name.
        node: String,
        /// `upload` or `download`.
        what: &'static str,
        /// The remote path.
        path: String,
        /// The remote error.
        message: String,
    },
}

/// A node the harness can run commands on and move files to and from.
#[async_trait]
pub trait Remote: Send + Sync {
    /// The node's name (`n1`).
    fn node(&self) -> &str;

    /// Runs `command` with `sh -c` on the node and waits at most `timeout` for it to finish.
    /// A non-zero exit is not an error: look at [`ExecOutput::code`].
    async fn exec(&self, command: &str, timeout: Duration) -> Result<ExecOutput, RemoteError>;

    /// Copies the local file `local` to `remote` (created or replaced atomically, its parent
    /// directory created) with the Unix permission bits `mode`.
    async fn upload(&self, local: &Path, remote: &str, mode: u32) -> Result<(), RemoteError>;

    /// Copies the remote file `remote` to the local file `local`.
    async fn download(&self, remote: &str, local: &Path) -> Result<(), RemoteError>;
}

/// Quotes `s` for a POSIX shell: `'it'\''s'`.
pub fn quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c));
    if safe {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Quotes every word and joins them with spaces.
pub fn quote_all<S: AsRef<str>>(words: &[S]) -> String {
    words
        .iter()
        .map(|w| quote(w.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Shortens a command for error messages.
pub(crate) fn short(command: &str) -> String {
    const MAX_CHARS: usize = 120;
    if command.chars().count() <= MAX_CHARS {
        command.to_owned()
    } else {
        let cut: String = command.chars().take(MAX_CHARS).collect();
        format!("{cut}...")
    }
}

/// Runs `command` and turns a non-zero exit into an error line naming the node and the command.
pub async fn run_ok(
    remote: &dyn Remote,
    command: &str,
    timeout: Duration,
) -> anyhow::Result<ExecOutput> {
    let out = remote.exec(command, timeout).await?;
    if !out.success() {
        anyhow::bail!(
            "{}: `{}` exited with {}: {}",
            remote.node(),
            short(command),
            out.code
                .map_or_else(|| "a signal".to_owned(), |c| c.to_string()),
            out.stderr_last_line()
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves shell quoting leaves plain words alone and survives quotes and spaces.
    #[test]
    fn quoting() {
        assert_eq!(quote("abc-1.2/x"), "abc-1.2/x");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote_all(&["echo", "$HOME"]), "echo '$HOME'");
    }
}
