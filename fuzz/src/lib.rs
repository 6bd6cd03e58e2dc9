//! Shared by the fuzz targets: fuzz input written into files, since the importers read paths.

use std::path::{Path, PathBuf};

/// A directory of its own for this process (reused across runs: files are overwritten).
pub fn scratch() -> &'static Path {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("warmstart-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("a scratch directory");
        d
    })
}

/// Splits `data` at `\n---\n` into at most `n` parts (missing parts are empty) and writes part
/// `i` to `dir/names[i]`.
pub fn write_parts(dir: &Path, names: &[&str], data: &[u8]) {
    let mut parts: Vec<&[u8]> = Vec::new();
    let mut rest = data;
    while parts.len() + 1 < names.len() {
        match rest.windows(5).position(|w| w == b"\n---\n") {
            Some(at) => {
                parts.push(&rest[..at]);
                rest = &rest[at + 5..];
            }
            None => break,
        }
    }
    parts.push(rest);
    for (i, name) in names.iter().enumerate() {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("a scratch directory");
        }
        std::fs::write(path, parts.get(i).copied().unwrap_or_default()).expect("a scratch file");
    }
}

/// A hidden progress bar.
pub fn quiet() -> indicatif::ProgressBar {
    indicatif::ProgressBar::hidden()
}
