//! The cluster secret: every call between roles, and every admin and store route, carries
//! `Authorization: Bearer <secret>` (docs/contracts.md §2). The secret comes from the file named
//! by `--secret-file`, never from the config.
//!
//! The file holds one to [`MAX_SECRETS`] secrets, one a line: the first is the one this process
//! sends, and any of them is accepted. That is what rotation on a running cluster needs
//! (docs/runbook.md): accept the new one everywhere, then send it everywhere, then drop the old.
//!
//! A secret is never printed: [`ClusterSecret`]'s `Debug` is redacted and the header value it
//! makes is marked sensitive. Comparison is constant-time ([`subtle`]) against every accepted
//! secret, so neither the position of a wrong byte nor which secret matched shows in the timing.

use std::path::Path;
use std::time::Duration;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use subtle::ConstantTimeEq;

use crate::http::ApiError;

/// Most secrets one file may hold (the current one plus those being rotated in or out).
pub const MAX_SECRETS: usize = 4;
/// Shortest secret accepted, in bytes.
pub const MIN_SECRET_BYTES: usize = 32;
/// Longest secret accepted, in bytes.
pub const MAX_SECRET_BYTES: usize = 512;
/// Largest secret file read.
const MAX_FILE_BYTES: u64 = 8 * 1024;

/// Why a secret file was refused. Never quotes the secret.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The file could not be read.
    #[error("secret file '{path}': {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Group or others may read the file.
    #[error("secret file '{path}': readable by group or others (mode {mode:o}); chmod 600 it")]
    Mode {
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// The contents break the format.
    #[error("secret file: {0}")]
    Format(String),
}

/// The secrets of this process: the one it sends first, then the others it accepts.
#[derive(Clone)]
pub struct ClusterSecret {
    accepted: Vec<Vec<u8>>,
    header: HeaderValue,
}

impl std::fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ClusterSecret({} accepted, redacted)",
            self.accepted.len()
        )
    }
}

impl ClusterSecret {
    /// Reads `path`, which must not be readable by group or others.
    pub fn load(path: &Path) -> Result<ClusterSecret, SecretError> {
        use std::io::Read;
        use std::os::unix::fs::PermissionsExt;
        let shown = path.display().to_string();
        let read_err = |source| SecretError::Read {
            path: shown.clone(),
            source,
        };
        let file = std::fs::File::open(path).map_err(read_err)?;
        let mode = file.metadata().map_err(read_err)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(SecretError::Mode { path: shown, mode });
        }
        let mut text = String::new();
        file.take(MAX_FILE_BYTES)
            .read_to_string(&mut text)
            .map_err(read_err)?;
        Self::from_text(&text)
    }

    /// Parses the file format: one secret a line (blank lines ignored), each
    /// [`MIN_SECRET_BYTES`] to [`MAX_SECRET_BYTES`] visible ASCII characters.
    pub fn from_text(text: &str) -> Result<ClusterSecret, SecretError> {
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        if lines.is_empty() || lines.len() > MAX_SECRETS {
            return Err(SecretError::Format(format!(
                "holds {} secrets; give 1 to {MAX_SECRETS}, one a line",
                lines.len()
            )));
        }
        for (i, l) in lines.iter().enumerate() {
            let visible = l.bytes().all(|b| b.is_ascii_graphic());
            if !visible || !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&l.len()) {
                return Err(SecretError::Format(format!(
                    "line {}: a secret is {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} visible ASCII characters",
                    i + 1
                )));
            }
        }
        let mut header = HeaderValue::from_str(&format!("Bearer {}", lines[0]))
            .map_err(|_| SecretError::Format("line 1 is not a header value".into()))?;
        header.set_sensitive(true);
        Ok(ClusterSecret {
            accepted: lines.iter().map(|l| l.as_bytes().to_vec()).collect(),
            header,
        })
    }

    /// `Bearer <the first secret>`, marked sensitive (never shown by `Debug`).
    pub fn authorization(&self) -> HeaderValue {
        self.header.clone()
    }

    /// True when `token` equals one of the accepted secrets. Compares against all of them in
    /// constant time per secret.
    pub fn accepts(&self, token: &[u8]) -> bool {
        let mut ok = subtle::Choice::from(0);
        for s in &self.accepted {
            ok |= s.as_slice().ct_eq(token);
        }
        bool::from(ok)
    }

    /// Checks a request's `Authorization: Bearer <secret>`; a 401 `unauthorized` otherwise.
    pub fn verify(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Err(unauthorized(
                "this route needs Authorization: Bearer <cluster secret>",
            ));
        };
        let bytes = value.as_bytes();
        let token = match bytes.split_at_checked(7) {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case(b"bearer ") => rest,
            _ => return Err(unauthorized("the Authorization scheme must be Bearer")),
        };
        if self.accepts(token.trim_ascii()) {
            Ok(())
        } else {
            Err(unauthorized("the bearer token is not the cluster secret"))
        }
    }
}

/// 401 with `www-authenticate: Bearer`.
fn unauthorized(message: &str) -> ApiError {
    metrics::counter!("requests_unauthorized_total").increment(1);
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
}

/// How this process calls other roles: with the cluster secret as a default header on every
/// request, and idle pooled connections dropped before the servers' keep-alive timeout closes
/// them (a request on a connection the server is closing would fail for nothing).
#[derive(Clone, Debug)]
pub struct PeerClient {
    secret: ClusterSecret,
    pool_idle_timeout: Duration,
}

impl PeerClient {
    /// Calls carrying `secret`; pooled connections idle at most `pool_idle_timeout`.
    pub fn new(secret: ClusterSecret, pool_idle_timeout: Duration) -> PeerClient {
        PeerClient {
            secret,
            pool_idle_timeout,
        }
    }

    /// A client builder with the secret, the pool idle timeout and `timeout` (per request and
    /// per connect) set.
    pub fn builder(&self, timeout: Duration) -> reqwest::ClientBuilder {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, self.secret.authorization());
        reqwest::Client::builder()
            .default_headers(headers)
            .timeout(timeout)
            .connect_timeout(timeout)
            .pool_idle_timeout(self.pool_idle_timeout)
    }

    /// The client of [`PeerClient::builder`].
    pub fn client(&self, timeout: Duration) -> reqwest::Client {
        self.builder(timeout).build().unwrap_or_else(|e| {
            // Building fails only without a TLS backend or resolver, neither of which this
            // crate uses: a defect, not an operating error.
            panic!("building an HTTP client: {e}")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(value).expect("value"),
        );
        h
    }

    /// Proves the file format's bounds, that the first secret is the one sent, that every
    /// listed secret is accepted and nothing else (prefixes, other schemes, a missing header),
    /// and that neither `Debug` of the secret nor of its header value shows it.
    #[test]
    fn secrets_are_parsed_checked_and_never_shown() {
        assert!(ClusterSecret::from_text("").is_err());
        assert!(ClusterSecret::from_text("short").is_err());
        assert!(
            ClusterSecret::from_text(&format!("{A} x")).is_err(),
            "inner space"
        );
        assert!(ClusterSecret::from_text(&format!("{A}\n{A}\n{A}\n{A}\n{A}")).is_err());
        assert!(ClusterSecret::from_text(&"é".repeat(40)).is_err());
        let s = ClusterSecret::from_text(&format!("\n{A}\n\n{B}\n")).expect("two secrets");
        assert_eq!(
            s.authorization().to_str().expect("ascii"),
            format!("Bearer {A}")
        );
        assert!(s.verify(&headers(&format!("Bearer {A}"))).is_ok());
        assert!(s.verify(&headers(&format!("bearer {B}"))).is_ok());
        for bad in [
            format!("Bearer {}", &A[1..]),
            format!("Bearer {A}a"),
            format!("Basic {A}"),
            "Bearer".to_owned(),
            format!("Bearer{A}"),
        ] {
            let e = s.verify(&headers(&bad)).expect_err("refused");
            assert_eq!(
                (e.status, e.code),
                (StatusCode::UNAUTHORIZED, "unauthorized")
            );
        }
        assert!(s.verify(&HeaderMap::new()).is_err());
        for shown in [format!("{s:?}"), format!("{:?}", s.authorization())] {
            assert!(!shown.contains(A) && !shown.contains(B), "{shown}");
        }
    }

    /// Proves a secret file readable by group or others is refused without quoting it.
    #[test]
    fn secret_file_mode_is_checked() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("secret");
        std::fs::write(&path, A).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        let e = ClusterSecret::load(&path).expect_err("group-readable");
        assert!(
            e.to_string().contains("chmod 600") && !e.to_string().contains(A),
            "{e}"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        assert!(ClusterSecret::load(&path).is_ok());
    }
}
