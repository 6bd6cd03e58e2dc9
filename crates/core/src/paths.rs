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

/// Writes a file whole or not at all: `write` fills a temporary file beside `path` (same
/// directory, so the rename cannot cross file systems), which is flushed to disk and renamed
/// over `path`. A reader never sees a half-written file, and one that memory-mapped the old
/// file keeps reading the old contents (its inode lives on until unmapped). On error the
/// temporary file is removed and `path` is untouched.
pub fn replace_file(
    path: &std::path::Path,
    write: impl FnOnce(&std::path::Path) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    let name = path.file_name().ok_or_else(|| std::io::Error::other(format!("{}: no file name", path.display())))?;
    // unique per process and call, so concurrent writers never share a temporary file
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{}.tmp-{}-{n}", name.to_string_lossy(), std::process::id()));
    let result = (|| {
        write(&tmp)?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_file_is_whole_or_nothing() {
        let dir = std::env::temp_dir().join(format!("warmstart-replace-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("model.bin");
        std::fs::write(&path, b"old").unwrap();
        // a reader holding the old file open keeps the old bytes
        let mut reader = std::fs::File::open(&path).unwrap();
        replace_file(&path, |tmp| std::fs::write(tmp, b"new contents")).unwrap();
        let mut old = String::new();
        std::io::Read::read_to_string(&mut reader, &mut old).unwrap();
        assert_eq!(old, "old");
        assert_eq!(std::fs::read(&path).unwrap(), b"new contents");
        // a failing writer leaves the file and no temporary behind
        let err = replace_file(&path, |tmp| {
            std::fs::write(tmp, b"half")?;
            Err(std::io::Error::other("disk full"))
        });
        assert!(err.is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"new contents");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
