//! Shared helpers of the importers: opening files with errors that name them, CSV headers,
//! UTF-8 checks and a stable hash.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};

/// Opens a file, failing with an error that names it; empty files are an error.
pub(crate) fn open_nonempty(path: &Path) -> Result<File> {
    let f = File::open(path).map_err(|e| Error::io(path, e))?;
    let len = f.metadata().map_err(|e| Error::io(path, e))?.len();
    if len == 0 {
        return Err(Error::Empty { path: path.into() });
    }
    Ok(f)
}

/// Reads a whole text file as UTF-8 (or Latin-1 when `latin1`), non-empty.
pub(crate) fn read_text(path: &Path, latin1: bool) -> Result<String> {
    let mut bytes = Vec::new();
    open_nonempty(path)?.read_to_end(&mut bytes).map_err(|e| Error::io(path, e))?;
    if latin1 {
        return Ok(bytes.iter().map(|&b| b as char).collect());
    }
    String::from_utf8(bytes).map_err(|e| {
        let upto = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..upto].iter().filter(|&&b| b == b'\n').count() as u64 + 1;
        Error::malformed(path, Some(line), "invalid UTF-8")
    })
}

/// A CSV reader over a non-empty file; rows may have any number of fields (checked by the
/// caller so that a bad row is a counted skip, not an error).
pub(crate) fn csv_reader(path: &Path, delimiter: u8, has_headers: bool) -> Result<csv::Reader<File>> {
    let f = open_nonempty(path)?;
    Ok(csv::ReaderBuilder::new().delimiter(delimiter).flexible(true).has_headers(has_headers).from_reader(f))
}

/// Column positions looked up by name in a CSV header.
pub(crate) struct Header {
    names: Vec<String>,
}

impl Header {
    pub(crate) fn read(path: &Path, rdr: &mut csv::Reader<File>) -> Result<Header> {
        let h = rdr.byte_headers().map_err(|e| csv_error(path, e))?;
        let names: Vec<String> =
            h.iter().map(|f| String::from_utf8_lossy(f).trim().trim_start_matches('\u{feff}').to_string()).collect();
        if names.iter().all(|n| n.is_empty()) {
            return Err(Error::Empty { path: path.into() });
        }
        Ok(Header { names })
    }
    pub(crate) fn len(&self) -> usize {
        self.names.len()
    }
    pub(crate) fn find(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n.eq_ignore_ascii_case(name))
    }
    pub(crate) fn require(&self, path: &Path, name: &str) -> Result<usize> {
        self.find(name).ok_or_else(|| Error::MissingColumn {
            path: path.into(),
            column: name.into(),
            found: self.names.iter().filter(|n| !n.is_empty()).cloned().collect::<Vec<_>>().join(", "),
        })
    }
}

/// Maps a csv error to an import error naming file and line.
pub(crate) fn csv_error(path: &Path, e: csv::Error) -> Error {
    let line = e.position().map(|p| p.line());
    let msg = match e.kind() {
        csv::ErrorKind::Io(io) => io.to_string(),
        _ => e.to_string(),
    };
    Error::malformed(path, line, msg)
}

/// The fields of a CSV row as UTF-8, or the index of the first field that is not.
pub(crate) fn utf8_fields(rec: &csv::ByteRecord) -> std::result::Result<Vec<&str>, usize> {
    rec.iter().enumerate().map(|(i, f)| std::str::from_utf8(f).map_err(|_| i)).collect()
}

/// Stable 64-bit hash (FNV-1a followed by a SplitMix64 finaliser) for deterministic dealing.
pub(crate) fn stable_hash(s: &str, seed: u64) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325 ^ seed;
    for b in s.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58476d1ce4e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d049bb133111eb);
    h ^ (h >> 31)
}
