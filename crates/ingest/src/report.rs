//! What an import read, kept and skipped, and why.

use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Error, Result};

/// Most skip examples kept in a report; counts are always complete.
pub const MAX_EXAMPLES: usize = 50;

/// One skipped row or dropped field.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Skip {
    /// File it came from.
    pub file: String,
    /// 1-based line (record) number, when it applies.
    pub line: Option<u64>,
    /// Field concerned, when it applies.
    pub field: Option<String>,
    /// Why.
    pub reason: String,
}

/// Counts of an import, reported to the user.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportReport {
    /// Source name (`fashion-products`, `csv`, ...).
    pub source: String,
    /// Files read.
    pub files: Vec<String>,
    /// Data rows (records) read.
    pub rows_read: u64,
    /// Rows that produced a product or interaction.
    pub rows_imported: u64,
    /// Rows skipped, by reason.
    pub rows_skipped: BTreeMap<String, u64>,
    /// Fields dropped from otherwise imported rows (e.g. an absurd price), by reason.
    pub fields_dropped: BTreeMap<String, u64>,
    /// Products and interactions produced.
    pub products: u64,
    /// Interactions produced.
    pub interactions: u64,
    /// First examples of skips and drops, with file and line.
    pub examples: Vec<Skip>,
    /// Reject the import at the first skipped row instead of counting it.
    #[serde(skip)]
    pub strict: bool,
}

impl ImportReport {
    /// A report for `source`.
    pub fn new(source: &str, strict: bool) -> Self {
        ImportReport { source: source.into(), strict, ..Default::default() }
    }

    /// Counts a skipped row (or fails in strict mode).
    pub fn skip_row(&mut self, file: &Path, line: u64, reason_kind: &str, detail: impl Into<String>) -> Result<()> {
        let detail = detail.into();
        if self.strict {
            return Err(Error::Strict { path: file.into(), line, reason: detail });
        }
        *self.rows_skipped.entry(reason_kind.to_string()).or_default() += 1;
        self.example(file, Some(line), None, detail);
        Ok(())
    }

    /// Counts a dropped field of an imported row.
    pub fn drop_field(
        &mut self,
        file: &Path,
        line: Option<u64>,
        field: &str,
        reason_kind: &str,
        detail: impl Into<String>,
    ) {
        *self.fields_dropped.entry(format!("{field}: {reason_kind}")).or_default() += 1;
        self.example(file, line, Some(field.to_string()), detail.into());
    }

    fn example(&mut self, file: &Path, line: Option<u64>, field: Option<String>, reason: String) {
        if self.examples.len() < MAX_EXAMPLES {
            self.examples.push(Skip { file: file.display().to_string(), line, field, reason });
        }
    }

    /// Total rows skipped.
    pub fn total_skipped(&self) -> u64 {
        self.rows_skipped.values().sum()
    }
}
