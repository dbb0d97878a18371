//! A shell on this machine, behind the same [`Remote`] interface as an SSH node.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

use super::{short, ExecOutput, Remote, RemoteError, MAX_OUTPUT_BYTES};

/// Runs commands with `sh -c` here; transfers are file copies.
#[derive(Debug, Clone)]
pub struct LocalRemote {
    node: String,
}

impl LocalRemote {
    /// A local remote that calls itself `node` in messages.
    pub fn new(node: &str) -> LocalRemote {
        LocalRemote {
            node: node.to_owned(),
        }
    }

    fn io(&self, path: &Path, source: std::io::Error) -> RemoteError {
        RemoteError::LocalIo {
            node: self.node.clone(),
            path: path.to_owned(),
            source,
        }
    }
}

async fn read_capped(pipe: Option<impl AsyncRead + Unpin>) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    if let Some(p) = pipe {
        p.take(MAX_OUTPUT_BYTES as u64)
            .read_to_end(&mut out)
            .await?;
    }
    Ok(out)
}

#[async_trait]
impl Remote for LocalRemote {
    fn node(&self) -> &str {
        &self.node
    }

    async fn exec(&self, command: &str, timeout: Duration) -> Result<ExecOutput, RemoteError> {
        let sh = Path::new("/bin/sh");
        let mut child = Command::new(sh)
            .arg("-c")
            .arg(command)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| self.io(sh, e))?;
        let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
        let all = async {
            let (out, err, status) =
                tokio::join!(read_capped(stdout), read_capped(stderr), child.wait());
            Ok::<_, std::io::Error>((out?, err?, status?))
        };
        match tokio::time::timeout(timeout, all).await {
            Ok(Ok((stdout, stderr, status))) => Ok(ExecOutput {
                code: status.code(),
                stdout,
                stderr,
            }),
            Ok(Err(e)) => Err(self.io(sh, e)),
            Err(_) => {
                // The child is killed on drop; its process group goes with a SIGKILL too.
                if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
                    let _ = nix::sys::signal::killpg(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                Err(RemoteError::Timeout {
                    node: self.node.clone(),
                    command: short(command),
                    timeout,
                })
            }
        }
    }

    async fn upload(&self, local: &Path, remote: &str, mode: u32) -> Result<(), RemoteError> {
        use std::os::unix::fs::PermissionsExt;
        let dest = Path::new(remote);
        if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| self.io(parent, e))?;
        }
        let tmp = dest.with_extension("upload-tmp");
        tokio::fs::copy(local, &tmp)
            .await
            .map_err(|e| self.io(local, e))?;
        tokio::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))
            .await
            .map_err(|e| self.io(&tmp, e))?;
        tokio::fs::rename(&tmp, dest)
            .await
            .map_err(|e| self.io(dest, e))
    }

    async fn download(&self, remote: &str, local: &Path) -> Result<(), RemoteError> {
        tokio::fs::copy(remote, local)
            .await
            .map(|_| ())
            .map_err(|e| self.io(Path::new(remote), e))
    }
}
