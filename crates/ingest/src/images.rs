//! Reading the bytes behind stored image references: a plain file path, or
//! `archive.tar.gz#member` as the fashion importer writes them. Members of one archive are
//! read in a single pass over it.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use flate2::read::GzDecoder;

use crate::Error;

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
            each(*key, std::fs::read(r).map_err(|e| format!("{r}: {e}")))?;
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
