//! The cluster secret of a run: 32 bytes of the OS RNG per run (or the contents of
//! `harness run --cluster-secret-file FILE`), given to every role in a file of its own
//! (`pipeline --secret-file`), never in the node config, the run directory, a log, a report,
//! `spec.json` or the rerun command (a rerun makes a new one). The harness sends it on every
//! call to a route that is not public (docs/contracts.md §2).
//!
//! The file format is the pipeline's: one to [`MAX_SECRETS`] secrets, one a line; roles send
//! the first and accept any (rotation, docs/runbook.md). The harness sends the first.

use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rand::RngCore;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};

/// Most secrets one file may hold.
pub const MAX_SECRETS: usize = 4;
/// Shortest and longest secret, in bytes (the pipeline's bounds).
pub const SECRET_BYTES: std::ops::RangeInclusive<usize> = 32..=512;
/// Bytes of OS randomness in a generated secret (written as hex).
const GENERATED_BYTES: usize = 32;
/// Largest secret file read.
const MAX_FILE_BYTES: u64 = 8 * 1024;

/// The secret of a run. `Debug` never shows it.
#[derive(Clone)]
pub struct ClusterSecret {
    /// The file's contents as the roles get them.
    text: String,
    /// `Bearer <first secret>`, marked sensitive.
    header: HeaderValue,
}

impl std::fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterSecret(redacted)")
    }
}

impl ClusterSecret {
    /// A fresh secret from the OS RNG (not the run's seeded RNG: a secret must not be derivable
    /// from `spec.json`).
    pub fn generate() -> ClusterSecret {
        let mut bytes = [0u8; GENERATED_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Self::from_text(&hex).unwrap_or_else(|e| panic!("a generated secret is valid: {e}"))
    }

    /// Reads `path`, which must be readable by its owner only. The message of an error quotes
    /// the file, never its contents.
    pub fn load(path: &Path) -> Result<ClusterSecret, String> {
        let shown = path.display();
        let file = std::fs::File::open(path)
            .map_err(|e| format!("--cluster-secret-file '{shown}': {e}"))?;
        let mode = file
            .metadata()
            .map_err(|e| format!("--cluster-secret-file '{shown}': {e}"))?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            return Err(format!(
                "--cluster-secret-file '{shown}': readable by group or others (mode {mode:o}); chmod 600 it"
            ));
        }
        let mut text = String::new();
        file.take(MAX_FILE_BYTES)
            .read_to_string(&mut text)
            .map_err(|e| format!("--cluster-secret-file '{shown}': {e}"))?;
        Self::from_text(&text).map_err(|e| format!("--cluster-secret-file '{shown}': {e}"))
    }

    /// Checks the format: 1 to [`MAX_SECRETS`] non-blank lines of [`SECRET_BYTES`] visible
    /// ASCII characters each.
    pub fn from_text(text: &str) -> Result<ClusterSecret, String> {
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        if lines.is_empty() || lines.len() > MAX_SECRETS {
            return Err(format!(
                "holds {} secrets; give 1 to {MAX_SECRETS}, one a line",
                lines.len()
            ));
        }
        for (i, l) in lines.iter().enumerate() {
            if !SECRET_BYTES.contains(&l.len()) || !l.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(format!(
                    "line {}: a secret is {} to {} visible ASCII characters",
                    i + 1,
                    SECRET_BYTES.start(),
                    SECRET_BYTES.end()
                ));
            }
        }
        let mut header = HeaderValue::from_str(&format!("Bearer {}", lines[0]))
            .map_err(|_| "line 1 is not a header value".to_owned())?;
        header.set_sensitive(true);
        Ok(ClusterSecret {
            text: lines.join("\n") + "\n",
            header,
        })
    }

    /// `Bearer <first secret>`, marked sensitive.
    pub fn authorization(&self) -> HeaderValue {
        self.header.clone()
    }

    /// Default headers carrying the secret, for a client of the roles.
    pub fn headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, self.authorization());
        h
    }
}

/// Names of secret directories begin with this, then the owning harness's pid and a dash.
const DIR_PREFIX: &str = "harness-secret-";

/// The owner's pid in the name of a secret directory.
fn owner_of(name: &str) -> Option<i32> {
    name.strip_prefix(DIR_PREFIX)?
        .split('-')
        .next()?
        .parse()
        .ok()
}

/// Removes the secret directories (in the system's temporary directory, owned by this user)
/// whose harness process is gone: what a SIGKILLed run left. A pid in use again keeps its
/// directory (it may be that run's). Returns how many were removed.
pub fn sweep_stale() -> usize {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return 0;
    };
    let me = nix::unistd::getuid().as_raw();
    let mut removed = 0;
    for e in entries.flatten() {
        let Some(pid) = owner_of(&e.file_name().to_string_lossy()) else {
            continue;
        };
        let mine = e.metadata().is_ok_and(|m| m.is_dir() && m.uid() == me);
        let gone = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None)
            == Err(nix::errno::Errno::ESRCH);
        if mine && gone && std::fs::remove_dir_all(e.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// The secret in a file of its own, mode 0600 in a fresh directory of mode 0700 below the
/// system's temporary directory (never inside the run directory), named after this process
/// (`harness-secret-<pid>-*`); both are removed on drop, or by [`sweep_stale`] once this
/// process is gone.
#[derive(Debug)]
pub struct SecretFile {
    dir: tempfile::TempDir,
    path: PathBuf,
}

impl SecretFile {
    /// Writes `secret` (after sweeping stale secret directories); refuses a temporary
    /// directory inside `run_dir`.
    pub fn write(secret: &ClusterSecret, run_dir: &Path) -> anyhow::Result<SecretFile> {
        let swept = sweep_stale();
        if swept > 0 {
            tracing::info!(
                swept,
                "removed secret directories of harness runs that are gone"
            );
        }
        let dir = tempfile::Builder::new()
            .prefix(&format!("{DIR_PREFIX}{}-", std::process::id()))
            .tempdir()?;
        let inside = |d: &Path| {
            let canon = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_owned());
            canon(d).starts_with(canon(run_dir))
        };
        anyhow::ensure!(
            !inside(dir.path()),
            "the temporary directory '{}' is inside the run directory; set TMPDIR elsewhere",
            dir.path().display()
        );
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))?;
        let path = dir.path().join("secret");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        f.write_all(secret.text.as_bytes())?;
        f.sync_all()?;
        Ok(SecretFile { dir, path })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the file and its directory now.
    pub fn remove(self) -> std::io::Result<()> {
        self.dir.close()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves generated secrets are 64 hex characters from the OS RNG (two differ), that the
    /// file format's bounds hold, and that neither `Debug` nor an error shows a secret.
    #[test]
    fn secrets_are_random_checked_and_never_shown() {
        let (a, b) = (ClusterSecret::generate(), ClusterSecret::generate());
        assert_eq!(a.text.trim().len(), 64);
        assert_ne!(a.text, b.text);
        assert!(!format!("{a:?} {:?}", a.authorization()).contains(a.text.trim()));
        assert!(ClusterSecret::from_text("short").is_err());
        assert!(ClusterSecret::from_text(&"x".repeat(513)).is_err());
        assert!(ClusterSecret::from_text(&format!("{} y", "x".repeat(40))).is_err());
        let five = vec!["k".repeat(40); 5].join("\n");
        assert!(ClusterSecret::from_text(&five).is_err());
        let two =
            ClusterSecret::from_text(&format!("\n{}\n\n{}\n", "a".repeat(40), "b".repeat(40)))
                .expect("two secrets");
        assert_eq!(
            two.authorization().to_str().expect("ascii"),
            format!("Bearer {}", "a".repeat(40))
        );
    }

    /// Proves the secret file is 0600 in a 0700 directory outside the run directory, holds the
    /// secret, and is gone after `remove`; and that a group-readable secret file is refused.
    #[test]
    fn secret_file_is_private_and_removed() {
        let run = tempfile::tempdir().expect("run dir");
        let s = ClusterSecret::generate();
        let f = SecretFile::write(&s, run.path()).expect("written");
        let path = f.path().to_owned();
        assert!(!path.starts_with(run.path()));
        let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().expect("dir")), 0o700);
        assert_eq!(std::fs::read_to_string(&path).expect("read"), s.text);
        let loaded = ClusterSecret::load(&path).expect("loads");
        assert_eq!(loaded.text, s.text);
        f.remove().expect("removed");
        assert!(!path.exists() && !path.parent().expect("dir").exists());

        assert!(path.parent().expect("dir").file_name().is_some_and(|n| {
            owner_of(&n.to_string_lossy()) == Some(std::process::id() as i32)
        }));

        let open = run.path().join("open-secret");
        std::fs::write(&open, "z".repeat(40)).expect("write");
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let e = ClusterSecret::load(&open).expect_err("group-readable");
        assert!(
            e.contains("chmod 600") && !e.contains(&"z".repeat(40)),
            "{e}"
        );
    }

    /// Proves a secret directory whose harness is gone is swept (its pid belonged to a child
    /// that has exited), while this process's own directory and names that are not secret
    /// directories stay.
    #[test]
    fn stale_secret_directories_are_swept() {
        let mut child = std::process::Command::new("true").spawn().expect("spawns");
        let dead = child.id();
        child.wait().expect("reaped");
        let tmp = std::env::temp_dir();
        let stale = tmp.join(format!("{DIR_PREFIX}{dead}-test"));
        std::fs::create_dir_all(&stale).expect("stale dir");
        std::fs::write(stale.join("secret"), "s".repeat(40)).expect("stale secret");
        let other = tmp.join(format!("{DIR_PREFIX}notapid-test-{}", std::process::id()));
        std::fs::create_dir_all(&other).expect("other dir");
        let run = tempfile::tempdir().expect("run dir");
        let live = SecretFile::write(&ClusterSecret::generate(), run.path()).expect("written");
        assert!(!stale.exists(), "the stale directory was swept");
        assert!(live.path().exists(), "this process's directory stays");
        assert!(other.exists(), "a name without a pid is not touched");
        std::fs::remove_dir_all(&other).expect("cleanup");
    }
}
