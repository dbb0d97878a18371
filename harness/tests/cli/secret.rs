//! The cluster secret of a run stays out of everything a run leaves behind.

use std::os::unix::fs::PermissionsExt;

use super::{files_containing, harness, latest, pipeline_bin, text};

/// Markers of private keys (PEM and OpenSSH).
const PRIVATE_KEY_MARKERS: &[&str] = &["PRIVATE KEY-----", "BEGIN OPENSSH PRIVATE KEY"];

/// Writes `secret` to a new file `name` in `dir` with `mode`; its path.
pub fn secret_file(
    dir: &std::path::Path,
    name: &str,
    secret: &str,
    mode: u32,
) -> std::path::PathBuf {
    let file = dir.join(name);
    std::fs::write(&file, format!("{secret}\n")).expect("secret file");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).expect("chmod");
    file
}

/// Asserts that no file below `run` holds `secret` or a private key, and that `spec.json`
/// records the secret's file `file` (its path, so that the rerun reads it again) but not the
/// secret.
pub fn assert_no_secret_or_key(run: &std::path::Path, secret: &str, file: &std::path::Path) {
    let leaked = files_containing(run, secret.as_bytes());
    assert!(leaked.is_empty(), "the secret is in {leaked:?}");
    for marker in PRIVATE_KEY_MARKERS {
        let keys = files_containing(run, marker.as_bytes());
        assert!(keys.is_empty(), "a private key is in {keys:?}");
    }
    let text = std::fs::read_to_string(run.join("spec.json")).expect("spec");
    assert!(!text.contains(secret), "{text}");
    let spec: serde_json::Value = serde_json::from_str(&text).expect("spec.json parses");
    let path = file.display().to_string();
    assert_eq!(spec["cluster_secret_file"], path.as_str(), "{text}");
    let rerun = harness::config::split_command(spec["rerun"].as_str().expect("rerun"))
        .expect("rerun splits");
    assert!(
        rerun
            .windows(2)
            .any(|w| w[0] == "--cluster-secret-file" && w[1] == path),
        "{rerun:?}"
    );
}

/// Directories `harness-secret-*` in the temporary directory whose secret file holds `secret`.
fn secret_dirs_holding(secret: &str) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(std::env::temp_dir())
        .expect("temp dir")
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("harness-secret-")
        })
        .filter(|e| {
            std::fs::read_to_string(e.path().join("secret")).is_ok_and(|t| t.contains(secret))
        })
        .map(|e| e.path())
        .collect()
}

/// Proves a local run given `--cluster-secret-file` is valid (every role and the harness
/// use that secret), and that afterwards no file of the run directory holds the secret or a
/// private key, `spec.json` and its rerun command name the secret file but not the secret, and the roles'
/// secret file outside the run directory is gone; and that a secret file readable by others
/// is refused with exit 254 before anything is written.
#[test]
fn the_secret_stays_out_of_the_run_directory() {
    let bin = pipeline_bin();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("runs");
    let secret = format!("cli-secret-{}", "5e".repeat(24));
    let file = secret_file(dir.path(), "cluster.secret", &secret, 0o644);
    let args = |out: &std::path::Path| {
        let mut cmd = harness(&[
            "run",
            "--cluster",
            "local",
            "--time-limit",
            "8s",
            "--seed",
            "7",
        ]);
        cmd.arg("--out")
            .arg(out)
            .arg("--pipeline-bin")
            .arg(&bin)
            .arg("--cluster-secret-file")
            .arg(&file);
        cmd
    };
    let o = args(&out).output().expect("runs");
    assert_eq!(o.status.code(), Some(254), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("chmod 600"),
        "{}",
        text(&o)
    );
    assert!(!String::from_utf8_lossy(&o.stderr).contains(&secret));
    assert!(!out.exists(), "a refused secret file wrote nothing");

    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let o = args(&out).output().expect("runs");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        !String::from_utf8_lossy(&o.stderr).contains(&secret),
        "{}",
        text(&o)
    );
    let run = latest(&out);
    assert_no_secret_or_key(&run, &secret, &file);
    assert!(
        run.join("nodes/n1/config.json").is_file(),
        "configs are in the run"
    );
    assert!(
        secret_dirs_holding(&secret).is_empty(),
        "the roles' secret file was left behind"
    );
}
