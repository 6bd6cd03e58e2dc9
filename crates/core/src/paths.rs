//! Where warmstart keeps its files.

use std::path::PathBuf;

/// warmstart's data home (store, models, caches): `$WARMSTART_HOME`, else
/// `$XDG_DATA_HOME/warmstart`, else `~/.local/share/warmstart`.
pub fn home_dir() -> PathBuf {
    if let Some(h) = std::env::var_os("WARMSTART_HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(h);
    }
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(x).join("warmstart");
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    home.join(".local/share/warmstart")
}
