//! `fashion-products`: the Myntra catalog (`styles.csv`) with photos read straight from
//! `images.tar.gz`, optionally dealt into several simulated shops.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::progress::ProgressBar;
use flate2::read::GzDecoder;
use warmstart_core::{ImageRef, Product, Site};

use crate::error::{Error, Result};
use crate::normalize::{canonical_brand, clean_text};
use crate::report::ImportReport;
use crate::util::{csv_error, csv_reader, open_nonempty, stable_hash, utf8_fields, Header};
use crate::Import;

/// Dataset group name.
pub const DATASET: &str = "fashion-products";

/// Options of the fashion importer.
#[derive(Debug, Clone)]
pub struct FashionOptions {
    /// Number of simulated shops to deal the catalog into (1 = one shop).
    pub shops: usize,
    /// Seed of the deterministic dealing.
    pub seed: u64,
    /// Decode every photo to detect corrupt ones (otherwise only presence is checked).
    pub verify_images: bool,
    /// Stop at the first bad row.
    pub strict: bool,
}

impl Default for FashionOptions {
    fn default() -> Self {
        FashionOptions { shops: 1, seed: 42, verify_images: true, strict: false }
    }
}

/// Site key of shop `i` (0-based) when dealing into `n` shops.
pub fn shop_key(i: usize, n: usize) -> String {
    if n == 1 {
        "fashion".to_string()
    } else {
        format!("fashion-shop-{}", i + 1)
    }
}

/// Words that mark the end of a brand prefix in a Myntra title ("Puma Men Blue T-shirt").
const AUDIENCE_WORDS: &[&str] =
    &["men", "women", "men's", "women's", "mens", "womens", "boys", "girls", "unisex", "kids", "baby", "infant"];

fn brand_from_title(title: &str) -> Option<String> {
    let words: Vec<&str> = title.split_whitespace().collect();
    let pos = words.iter().take(5).position(|w| AUDIENCE_WORDS.contains(&w.to_lowercase().as_str()))?;
    (pos > 0).then(|| canonical_brand(&words[..pos].join(" "))).flatten()
}

/// Most simulated shops a catalog is dealt into.
pub const MAX_SHOPS: usize = 1000;

/// Imports `dir/styles.csv` and `dir/images.tar.gz` (`path` may also name `styles.csv`).
pub fn import(path: &Path, opts: &FashionOptions, progress: &ProgressBar) -> Result<Import> {
    if !(1..=MAX_SHOPS).contains(&opts.shops) {
        return Err(Error::Options(format!("--shops must be in 1..={MAX_SHOPS} (got {})", opts.shops)));
    }
    let dir = if path.is_dir() { path.to_path_buf() } else { path.parent().map(Path::to_path_buf).unwrap_or_default() };
    let styles = if path.is_dir() { dir.join("styles.csv") } else { path.to_path_buf() };
    let archive = dir.join("images.tar.gz");
    let mut report = ImportReport::new(DATASET, opts.strict);
    report.files.push(styles.display().to_string());

    let mut rdr = csv_reader(&styles, b',', true)?;
    let header = Header::read(&styles, &mut rdr)?;
    let col_id = header.require(&styles, "id")?;
    let col_title = header.require(&styles, "productDisplayName")?;
    let optional = |n: &str| header.find(n);
    let (col_master, col_sub, col_article) =
        (optional("masterCategory"), optional("subCategory"), optional("articleType"));
    let attr_cols: Vec<(String, usize)> = ["gender", "baseColour", "season", "usage", "year"]
        .iter()
        .filter_map(|n| optional(n).map(|i| (n.to_string(), i)))
        .collect();

    let mut products: Vec<Product> = Vec::new();
    let mut by_id: HashMap<String, usize> = HashMap::new();
    let mut rec = csv::ByteRecord::new();
    progress.set_message("reading styles.csv");
    loop {
        match rdr.read_byte_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(csv_error(&styles, e)),
        }
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        report.rows_read += 1;
        if rec.len() != header.len() {
            report.skip_row(
                &styles,
                line,
                "wrong column count",
                format!("expected {} columns, found {}", header.len(), rec.len()),
            )?;
            continue;
        }
        let fields = match utf8_fields(&rec) {
            Ok(f) => f,
            Err(i) => {
                report.skip_row(&styles, line, "invalid UTF-8", format!("invalid UTF-8 in column {}", i + 1))?;
                continue;
            }
        };
        let id = fields[col_id].trim();
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            report.skip_row(&styles, line, "bad id", format!("id `{id}` is not a number"))?;
            continue;
        }
        if by_id.contains_key(id) {
            report.skip_row(&styles, line, "duplicate id", format!("id {id} appears again"))?;
            continue;
        }
        let title = clean_text(fields[col_title]);
        let shop = if opts.shops == 1 { 0 } else { (stable_hash(id, opts.seed) % opts.shops as u64) as usize };
        let mut p = Product::new(shop_key(shop, opts.shops), id, title);
        p.category = [col_master, col_sub, col_article]
            .iter()
            .flatten()
            .map(|&i| clean_text(fields[i]))
            .filter(|s| !s.is_empty())
            .collect();
        for (name, i) in &attr_cols {
            let v = clean_text(fields[*i]);
            if !v.is_empty() {
                p.attributes.insert(name.clone(), v);
            }
        }
        p.brand = brand_from_title(&p.title);
        p.refresh_missing();
        by_id.insert(id.to_string(), products.len());
        products.push(p);
        report.rows_imported += 1;
        progress.inc(1);
    }

    if archive.exists() {
        read_images(&archive, &mut products, &by_id, opts, &mut report, progress)?;
    } else {
        report.drop_field(
            &archive,
            None,
            "image",
            "archive missing",
            format!("{} not found: products have no images", archive.display()),
        );
    }

    let sites = (0..opts.shops)
        .map(|i| Site {
            key: shop_key(i, opts.shops),
            name: if opts.shops == 1 { "Fashion (Myntra)".into() } else { format!("Fashion shop {}", i + 1) },
            dataset: DATASET.into(),
        })
        .collect();
    report.products = products.len() as u64;
    Ok(Import { sites, products, interactions: Vec::new(), report })
}

fn read_images(
    archive: &Path,
    products: &mut [Product],
    by_id: &HashMap<String, usize>,
    opts: &FashionOptions,
    report: &mut ImportReport,
    progress: &ProgressBar,
) -> Result<()> {
    report.files.push(archive.display().to_string());
    let abs: PathBuf = archive.canonicalize().unwrap_or_else(|_| archive.to_path_buf());
    let file = open_nonempty(archive)?;
    let mut tar = tar::Archive::new(GzDecoder::new(std::io::BufReader::with_capacity(1 << 20, file)));
    progress.set_message("reading images.tar.gz");
    let entries = tar.entries().map_err(|e| Error::malformed(archive, None, format!("not a tar.gz archive: {e}")))?;
    let mut buf = Vec::new();
    for entry in entries {
        let mut entry =
            entry.map_err(|e| Error::malformed(archive, None, format!("truncated or corrupt archive: {e}")))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry
            .path()
            .map_err(|e| Error::malformed(archive, None, format!("bad entry name: {e}")))?
            .to_string_lossy()
            .into_owned();
        let Some(stem) = Path::new(&name).file_stem().and_then(|s| s.to_str()).map(str::to_string) else { continue };
        let Some(&idx) = by_id.get(&stem) else {
            report.drop_field(archive, None, "image", "no catalog row", format!("{name}: image without a catalog row"));
            continue;
        };
        if entry.header().size().unwrap_or(u64::MAX) > crate::images::MAX_IMAGE_BYTES {
            report.drop_field(archive, None, "image", "too large", format!("{name}: larger than 32 MiB"));
            continue;
        }
        buf.clear();
        entry
            .read_to_end(&mut buf)
            .map_err(|e| Error::malformed(archive, None, format!("truncated or corrupt archive at {name}: {e}")))?;
        if opts.verify_images {
            if let Err(e) = image::load_from_memory(&buf) {
                report.drop_field(archive, None, "image", "corrupt image", format!("{name}: {e}"));
                continue;
            }
        } else if buf.is_empty() {
            report.drop_field(archive, None, "image", "corrupt image", format!("{name}: empty file"));
            continue;
        }
        let p = &mut products[idx];
        p.image = Some(ImageRef(format!("{}#{}", abs.display(), name)));
        p.refresh_missing();
        progress.inc(1);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shop_counts_out_of_range_are_an_error_not_a_panic() {
        for shops in [0, MAX_SHOPS + 1, usize::MAX] {
            let opts = FashionOptions { shops, ..Default::default() };
            let err = import(Path::new("/nonexistent/styles.csv"), &opts, &ProgressBar::hidden()).unwrap_err();
            assert!(err.to_string().contains("--shops"), "{err}");
        }
    }
}
