//! Reading the bytes behind stored image references: a plain file path, or
//! `archive.tar.gz#member` as the fashion importer writes them. Members of one archive are
//! read in a single pass over it.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use flate2::read::GzDecoder;

use crate::Error;

/// Largest image read from a file or an archive member (a product photo is well under this).
pub const MAX_IMAGE_BYTES: u64 = 32 << 20;

/// Reads at most [`MAX_IMAGE_BYTES`] from `r`; more is an error (never read whole).
pub fn read_limited(mut r: impl Read, what: &str) -> std::result::Result<Vec<u8>, String> {
    let mut buf = Vec::new();
    (&mut r).take(MAX_IMAGE_BYTES + 1).read_to_end(&mut buf).map_err(|e| format!("{what}: {e}"))?;
    if buf.len() as u64 > MAX_IMAGE_BYTES {
        return Err(format!("{what}: larger than {MAX_IMAGE_BYTES} bytes"));
    }
    Ok(buf)
}

/// The bytes of a local image file: a regular file of at most [`MAX_IMAGE_BYTES`] (devices,
/// directories and FIFOs are refused, so `/dev/zero` cannot exhaust memory).
pub fn read_image_file(path: &str) -> std::result::Result<Vec<u8>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{path}: {e}"))?;
    let meta = file.metadata().map_err(|e| format!("{path}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("{path}: not a regular file"));
    }
    if meta.len() > MAX_IMAGE_BYTES {
        return Err(format!("{path}: {} bytes, larger than {MAX_IMAGE_BYTES}", meta.len()));
    }
    read_limited(file, path)
}

/// Calls `each(key, bytes or why not)` once for every `(key, reference)` in `refs`, in
/// archive order. An unreadable image is reported to `each` (and counted by the caller);
/// a truncated archive stops with an error naming it. Remote (`http…`) references are not
/// fetched.
pub fn read_images<K: Copy, E: From<Error>>(
    refs: &[(K, String)],
    mut each: impl FnMut(K, std::result::Result<Vec<u8>, String>) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    let mut archives: HashMap<&str, HashMap<&str, Vec<K>>> = HashMap::new();
    for (key, r) in refs {
        if r.starts_with("http://") || r.starts_with("https://") {
            each(*key, Err(format!("{r}: remote images are not fetched")))?;
        } else if let Some((archive, member)) = r.split_once('#') {
            archives.entry(archive).or_default().entry(member).or_default().push(*key);
        } else {
            each(*key, read_image_file(r))?;
        }
    }
    let mut names: Vec<&str> = archives.keys().copied().collect();
    names.sort_unstable();
    for archive in names {
        let mut wanted = archives.remove(archive).unwrap_or_default();
        let path = Path::new(archive);
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) => {
                for keys in wanted.into_values() {
                    for k in keys {
                        each(k, Err(format!("{archive}: {e}")))?;
                    }
                }
                continue;
            }
        };
        let mut tar = tar::Archive::new(GzDecoder::new(std::io::BufReader::with_capacity(1 << 20, file)));
        let entries = tar.entries().map_err(|e| Error::malformed(path, None, format!("not a tar.gz archive: {e}")))?;
        for entry in entries {
            if wanted.is_empty() {
                break;
            }
            let mut entry =
                entry.map_err(|e| Error::malformed(path, None, format!("truncated or corrupt archive: {e}")))?;
            let name = entry.path().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
            let Some(keys) = wanted.remove(name.as_str()) else { continue };
            if entry.header().size().unwrap_or(u64::MAX) > MAX_IMAGE_BYTES {
                for k in keys {
                    each(k, Err(format!("{archive}#{name}: larger than {MAX_IMAGE_BYTES} bytes")))?;
                }
                continue;
            }
            let mut buf = Vec::new();
            entry
                .read_to_end(&mut buf)
                .map_err(|e| Error::malformed(path, None, format!("truncated or corrupt archive at {name}: {e}")))?;
            for k in keys {
                each(k, Ok(buf.clone()))?;
            }
        }
        for (member, keys) in wanted {
            for k in keys {
                each(k, Err(format!("{archive}: no member {member}")))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_one(r: &str) -> std::result::Result<Vec<u8>, String> {
        let mut out = None;
        read_images::<u8, Error>(&[(0, r.to_string())], |_, got| {
            out = Some(got);
            Ok(())
        })
        .unwrap();
        out.unwrap()
    }

    #[test]
    fn devices_directories_and_huge_files_are_refused() {
        let e = read_one("/dev/zero").unwrap_err();
        assert!(e.contains("/dev/zero") && e.contains("not a regular file"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let e = read_one(dir.path().to_str().unwrap()).unwrap_err();
        assert!(e.contains("not a regular file"), "{e}");
        let big = dir.path().join("big.jpg");
        std::fs::File::create(&big).unwrap().set_len(MAX_IMAGE_BYTES + 1).unwrap();
        let e = read_one(big.to_str().unwrap()).unwrap_err();
        assert!(e.contains("larger than"), "{e}");
        let small = dir.path().join("small.jpg");
        std::fs::write(&small, [1, 2, 3]).unwrap();
        assert_eq!(read_one(small.to_str().unwrap()).unwrap(), vec![1, 2, 3]);
        assert!(read_one("https://example.com/a.jpg").unwrap_err().contains("not fetched"));
    }

    #[test]
    fn oversized_archive_members_are_refused_unread() {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("images.tar.gz");
        let gz = flate2::write::GzEncoder::new(std::fs::File::create(&archive).unwrap(), flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        // a sparse-looking header claiming a huge member, then a small real one
        let mut h = tar::Header::new_gnu();
        h.set_size(MAX_IMAGE_BYTES + 1);
        h.set_cksum();
        let zeros = std::io::repeat(0).take(MAX_IMAGE_BYTES + 1);
        tar.append_data(&mut h, "big.jpg", zeros).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_cksum();
        tar.append_data(&mut h, "ok.jpg", &[7u8, 8, 9][..]).unwrap();
        tar.into_inner().unwrap().finish().unwrap();
        let a = archive.to_str().unwrap();
        assert!(read_one(&format!("{a}#big.jpg")).unwrap_err().contains("larger than"));
        assert_eq!(read_one(&format!("{a}#ok.jpg")).unwrap(), vec![7, 8, 9]);
    }
}
