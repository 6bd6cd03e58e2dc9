//! Helpers shared by the CLI integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The shared data directory: `$WARMSTART_DATA`, else `../shared/data` beside the checkout.
pub fn data_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("WARMSTART_DATA") {
        return PathBuf::from(d);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")
}

/// The `warmstart` binary with a store in `dir`.
pub fn warmstart(store: &Path) -> assert_cmd::Command {
    let mut c = assert_cmd::Command::cargo_bin("warmstart").unwrap();
    c.arg("--store").arg(store);
    c
}

/// `warmstart stats --json` as a value.
pub fn stats(store: &Path) -> serde_json::Value {
    let out = warmstart(store).args(["stats", "--json"]).output().unwrap();
    assert!(out.status.success(), "stats failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Per-site entry of stats.
pub fn site<'a>(st: &'a serde_json::Value, key: &str) -> &'a serde_json::Value {
    st["sites"].as_array().unwrap().iter().find(|s| s["key"] == key).unwrap_or_else(|| panic!("no site {key}"))
}
