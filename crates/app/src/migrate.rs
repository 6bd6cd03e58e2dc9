//! `warmstart migrate`: a whole store copied to another backend (SQLite ⇄ PostgreSQL) with
//! its ids, vectors, removed products, served lists, events and secrets, and its trained
//! models directory copied beside the new store. The copy is checked: both stores must report
//! the same `stats` afterwards.

use std::path::{Path, PathBuf};

use warmstart_store::dump::Table;
use warmstart_store::{Store, StoreStats};

use crate::{Error, Result};

/// What a migration copied.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MigrateReport {
    /// Source store (without password).
    pub from: String,
    /// Destination store (without password).
    pub to: String,
    /// Rows copied per table.
    pub rows: Vec<(String, u64)>,
    /// Files copied from the source's models directory.
    pub model_files: u64,
    /// Destination's models directory.
    pub models_dir: PathBuf,
    /// The destination's stats (equal to the source's but for the location).
    pub stats: StoreStats,
    /// Seconds taken.
    pub seconds: f64,
}

/// Copies the store at `from` into the new, empty store at `to`, and (with `models`) the
/// source's models directory into the destination's. `progress(table, rows)` after each
/// chunk.
pub fn migrate(from: &Path, to: &Path, models: bool, progress: &dyn Fn(Table, u64)) -> Result<MigrateReport> {
    let t0 = std::time::Instant::now();
    let source = Store::open(from)?;
    let mut dest = Store::open(to)?;
    let rows = std::cell::RefCell::new(Vec::<(String, u64)>::new());
    warmstart_store::copy_store(&source, &mut dest, &|t, n| {
        let mut r = rows.borrow_mut();
        match r.last_mut() {
            Some((name, count)) if name == t.name() => *count = n,
            _ => r.push((t.name().to_string(), n)),
        }
        progress(t, n);
    })?;
    let mut a = source.stats()?;
    let mut b = dest.stats()?;
    let to_location = std::mem::take(&mut b.store);
    a.store.clear();
    if a != b {
        return Err(Error::Artifact {
            path: warmstart_store::redact_url(&to.display().to_string()),
            reason: "the copy's stats differ from the source's (the destination is incomplete: empty it and retry)"
                .into(),
        });
    }
    b.store = to_location;
    let model_files = if models { copy_dir(&source.models_dir(), &dest.models_dir())? } else { 0 };
    Ok(MigrateReport {
        from: source.location(),
        to: dest.location(),
        rows: rows.into_inner(),
        model_files,
        models_dir: dest.models_dir(),
        stats: b,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// Copies a directory tree (files only; links are skipped); returns files copied.
fn copy_dir(from: &Path, to: &Path) -> Result<u64> {
    if !from.is_dir() {
        return Ok(0);
    }
    let mut n = 0;
    std::fs::create_dir_all(to).map_err(|e| Error::io(to, e))?;
    for entry in std::fs::read_dir(from).map_err(|e| Error::io(from, e))? {
        let entry = entry.map_err(|e| Error::io(from, e))?;
        let kind = entry.file_type().map_err(|e| Error::io(&entry.path(), e))?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            n += copy_dir(&entry.path(), &target)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &target).map_err(|e| Error::io(&target, e))?;
            n += 1;
        }
    }
    Ok(n)
}
