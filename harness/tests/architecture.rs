//! The workspace's shape, checked from `cargo metadata` and ARCHITECTURE.md: no crate links
//! `sut` (dev-dependencies included), the nemesis and the fault proxy link neither the checker
//! nor the harness, the formats crate links nothing of the workspace, and every path the code
//! map names exists.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the harness lives in the workspace")
        .to_owned()
}

/// Each workspace crate's dependencies on other workspace crates (every kind).
fn workspace_deps() -> BTreeMap<String, BTreeSet<String>> {
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(workspace_root())
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let packages = meta["packages"].as_array().expect("packages");
    let names: BTreeSet<String> = packages
        .iter()
        .filter_map(|p| p["name"].as_str().map(str::to_owned))
        .collect();
    packages
        .iter()
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .expect("dependencies")
                .iter()
                .filter_map(|d| d["name"].as_str())
                .filter(|d| names.contains(*d))
                .map(str::to_owned)
                .collect();
            (p["name"].as_str().expect("name").to_owned(), deps)
        })
        .collect()
}

/// Proves the dependency rules hold for every crate and every kind of dependency.
#[test]
fn crates_depend_only_where_allowed() {
    let deps = workspace_deps();
    for want in ["sut", "checker", "formats", "nemesis", "harness"] {
        assert!(deps.contains_key(want), "no crate {want}: {deps:?}");
    }
    for (krate, on) in &deps {
        assert!(!on.contains("sut"), "{krate} depends on sut: {on:?}");
    }
    assert!(deps["formats"].is_empty(), "formats: {:?}", deps["formats"]);
    assert!(deps["sut"].is_empty(), "sut: {:?}", deps["sut"]);
    for krate in ["nemesis", "faultproxy"] {
        if let Some(on) = deps.get(krate) {
            for forbidden in ["checker", "harness"] {
                assert!(!on.contains(forbidden), "{krate} depends on {forbidden}");
            }
        }
    }
    if let Some(on) = deps.get("faultproxy") {
        assert!(!on.contains("nemesis"), "faultproxy depends on nemesis");
    }
}

/// Proves every file or folder ARCHITECTURE.md's code map names exists.
#[test]
fn code_map_paths_exist() {
    let root = workspace_root();
    let text = std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let map = text
        .split("## Code map")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("a code map section");
    let mut checked = 0;
    for line in map.lines().filter(|l| l.starts_with('|')) {
        let first_cell = line.split('|').nth(1).unwrap_or_default();
        // A bare file name after a path names a file in that path's folder.
        let mut folder = PathBuf::new();
        for name in first_cell.split('`').skip(1).step_by(2) {
            let name = name.trim_end_matches('/');
            let path = if name.contains('/') {
                let p = PathBuf::from(name);
                folder = p.parent().map(Path::to_owned).unwrap_or_default();
                p
            } else {
                folder.join(name)
            };
            assert!(
                root.join(&path).exists(),
                "the code map names '{}', which does not exist",
                path.display()
            );
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} paths found in the code map");
}
