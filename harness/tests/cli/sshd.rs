//! A private OpenSSH sshd on a loopback port for tests: its own host key, an authorized client
//! key, a known-hosts file; stopped when dropped. Also the skip rule for tests that need system
//! tools: outside CI they print why and skip, under `CI=true` a skip is a failure.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Skips (returns true) with a printed reason, or panics under `CI=true`.
pub fn skip(test: &str, reason: &str) -> bool {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: cannot run under CI=true: {reason}");
    }
    eprintln!("SKIPPED {test}: {reason}");
    true
}

/// The sshd binary, if installed.
pub fn sshd_path() -> Option<PathBuf> {
    ["/usr/sbin/sshd", "/usr/local/sbin/sshd", "/sbin/sshd"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

pub fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

fn keygen(path: &Path) {
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "test", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen runs");
    assert!(st.success(), "ssh-keygen failed");
}

/// Reads the `type base64` part of a public key file.
pub fn pubkey(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("pub key");
    text.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

pub struct TestSshd {
    pub dir: PathBuf,
    pub port: u16,
    pub user: String,
    pub client_key: PathBuf,
    pub known_hosts: PathBuf,
    child: Child,
}

impl TestSshd {
    /// Starts sshd on 127.0.0.1 in `dir`, or returns None when it cannot (after `skip`).
    pub fn start(test: &str, dir: &Path) -> Option<TestSshd> {
        let Some(sshd) = sshd_path() else {
            skip(
                test,
                "sshd is not installed (apt-get install openssh-server)",
            );
            return None;
        };
        if !is_root() {
            // Without root, sshd can log in only its own user, and with UsePAM no it refuses
            // accounts whose password is locked (most accounts without one).
            skip(test, "needs root to run a private sshd that accepts logins");
            return None;
        }
        // Debian's package makes /run/sshd only when its service starts.
        std::fs::create_dir_all("/run/sshd").expect("privsep dir");
        let hostkey = dir.join("host_key");
        let client_key = dir.join("client_key");
        keygen(&hostkey);
        keygen(&client_key);
        std::fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys")).expect("copy");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let known_hosts = dir.join("known_hosts");
        std::fs::write(
            &known_hosts,
            format!("[127.0.0.1]:{port} {}\n", pubkey(&dir.join("host_key.pub"))),
        )
        .expect("known_hosts");
        let config = dir.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "ListenAddress 127.0.0.1\nPort {port}\nHostKey {}\nPidFile {}\nAuthorizedKeysFile {}\n\
                 PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 UsePAM no\nStrictModes no\nUseDNS no\nPrintMotd no\nMaxSessions 20\n",
                hostkey.display(),
                dir.join("sshd.pid").display(),
                dir.join("authorized_keys").display()
            ),
        )
        .expect("config");
        let log = std::fs::File::create(dir.join("sshd.log")).expect("log");
        let child = Command::new(&sshd)
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("sshd starts");
        let user = String::from_utf8(
            Command::new("id")
                .arg("-un")
                .output()
                .expect("id runs")
                .stdout,
        )
        .expect("utf8")
        .trim()
        .to_owned();
        let sshd = TestSshd {
            dir: dir.to_owned(),
            port,
            user,
            client_key,
            known_hosts,
            child,
        };
        let end = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < end,
                "sshd did not listen: {}",
                std::fs::read_to_string(dir.join("sshd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(sshd)
    }

    /// A nodes file with one node `n1` on this sshd, using `known_hosts`.
    pub fn nodes_file(&self, name: &str, known_hosts: &Path) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(
            &path,
            format!(
                "known_hosts = \"{}\"\n[[node]]\nname = \"n1\"\nhost = \"127.0.0.1\"\nport = {}\nuser = \"{}\"\nkey = \"{}\"\n",
                known_hosts.display(),
                self.port,
                self.user,
                self.client_key.display()
            ),
        )
        .expect("nodes file");
        path
    }
}

impl Drop for TestSshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
