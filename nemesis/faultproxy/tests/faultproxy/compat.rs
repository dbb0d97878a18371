//! Compatibility with Toxiproxy clients: the `toxiproxy_rust` crate (blocking, OpenSSL) drives the
//! real `faultproxy` binary. Built only with `--features toxiproxy-compat`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use toxiproxy_rust::client::Client;
use toxiproxy_rust::proxy::ProxyPack;

/// Kills the faultproxy process when the test ends, also on panic.
struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn echo_server() -> std::net::SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    std::thread::spawn(move || {
        for s in l.incoming().take(16) {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 1024];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 || s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

fn round_trip(listen: &str) -> Duration {
    let mut s = TcpStream::connect(listen).expect("connects through the proxy");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let t0 = Instant::now();
    s.write_all(b"ping").expect("write");
    let mut buf = [0u8; 4];
    s.read_exact(&mut buf).expect("echo");
    assert_eq!(&buf, b"ping");
    t0.elapsed()
}

/// Proves the `toxiproxy_rust` client works against `faultproxy` unchanged: it populates a proxy,
/// adds a 500 ms latency toxic that is measured through the proxy, and removes it again.
#[test]
fn toxiproxy_rust_drives_faultproxy() {
    const LATENCY_MS: u32 = 500;
    let mut child = Command::new(env!("CARGO_BIN_EXE_faultproxy"))
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("faultproxy starts");
    let stdout = child.stdout.take().expect("stdout");
    let guard = Kill(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("banner");
    let api = line
        .trim()
        .strip_prefix("faultproxy: listening on ")
        .unwrap_or_else(|| panic!("unexpected banner {line:?}"))
        .to_owned();
    let echo = echo_server();
    let client = Client::new(api.as_str());
    assert!(client.is_running());
    assert!(client.version().expect("version").contains("version"));
    client
        .populate(vec![ProxyPack::new(
            "echo".into(),
            "127.0.0.1:0".into(),
            echo.to_string(),
        )])
        .expect("populate");
    let proxy = client.find_and_reset_proxy("echo").expect("proxy found");
    let listen = proxy.proxy_pack.listen.clone();
    assert!(round_trip(&listen) < Duration::from_millis(u64::from(LATENCY_MS)));
    proxy.with_latency("downstream".into(), LATENCY_MS, 0, 1.0);
    let toxics = proxy.toxics().expect("toxics listed");
    assert_eq!(toxics.len(), 1);
    assert_eq!(toxics[0].attributes["latency"], LATENCY_MS);
    let slow = round_trip(&listen);
    assert!(
        slow >= Duration::from_millis(u64::from(LATENCY_MS)),
        "only {slow:?}"
    );
    proxy.delete_all_toxics().expect("toxics removed");
    assert!(round_trip(&listen) < Duration::from_millis(u64::from(LATENCY_MS)));
    proxy
        .with_down(|| {
            assert!(
                TcpStream::connect(&listen).is_err(),
                "disabled proxy refuses"
            );
        })
        .expect("down and up");
    drop(guard);
}
