//! `amazon-art-office`: the URLLM preprocessing of Amazon Arts/Crafts ("art") and Office
//! Products ("office") with real reviewers active on both, and the published user split.
//!
//! Titles and the `item_attribute` field (category path followed by the brand, with the
//! separators lost in preprocessing) are split heuristically: the brand is the attribute's
//! tail starting at the title's first word; failing that, the tail after the longest
//! category prefix seen on other items.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use crate::progress::ProgressBar;
use warmstart_core::{EventTime, Interaction, InteractionKind, Product, Site, Split};

use crate::error::{Error, Result};
use crate::normalize::{canonical_brand, clean_text};
use crate::report::ImportReport;
use crate::util::{csv_error, csv_reader, read_text, utf8_fields, Header};
use crate::Import;

/// Dataset group name.
pub const DATASET: &str = "amazon-art-office";
/// Site key of the Arts/Crafts/Sewing shop.
pub const ART: &str = "amazon-art";
/// Site key of the Office Products shop.
pub const OFFICE: &str = "amazon-office";
/// User key prefix.
pub const USER_PREFIX: &str = "amazon:";

const TOPS: [(&str, &str); 2] = [(ART, "arts crafts sewing"), (OFFICE, "office products")];

struct RawItem {
    id_before: String,
    id_after: String,
    title: String,
    attribute: Vec<String>,
}

/// Imports the directory holding `items_*.csv`, `users.txt` and `train/valid/test.txt`.
pub fn import(dir: &Path, strict: bool, progress: &ProgressBar) -> Result<Import> {
    let mut report = ImportReport::new(DATASET, strict);
    let mut products = Vec::new();
    let mut item_site: HashMap<String, &'static str> = HashMap::new();
    for (site, file) in [(ART, "items_art.csv"), (OFFICE, "items_office.csv")] {
        let path = dir.join(file);
        report.files.push(path.display().to_string());
        let raw = read_items(&path, &mut report)?;
        let top = TOPS.iter().find(|t| t.0 == site).map(|t| t.1).unwrap_or_default();
        for p in split_items(site, top, raw) {
            item_site.insert(p.external_id.clone(), site);
            products.push(p);
        }
        progress.inc(1);
    }
    report.products = products.len() as u64;

    // users.txt: reviewer id <TAB> index
    let users_path = dir.join("users.txt");
    report.files.push(users_path.display().to_string());
    let text = read_text(&users_path, false)?;
    let mut user_key: HashMap<String, String> = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line_no = n as u64 + 1;
        if line.trim().is_empty() {
            continue;
        }
        report.rows_read += 1;
        let parts: Vec<&str> = line.split('\t').collect();
        if parts.len() != 2 || parts[1].trim().parse::<u32>().is_err() || parts[0].trim().is_empty() {
            report.skip_row(&users_path, line_no, "bad user line", "expected `reviewer_id<TAB>index`")?;
            continue;
        }
        user_key.insert(parts[1].trim().to_string(), format!("{USER_PREFIX}{}", parts[0].trim()));
        report.rows_imported += 1;
    }

    let mut interactions = Vec::new();
    let mut seen: HashSet<(String, String, i64)> = HashSet::new();
    for (split, file) in [(Split::Train, "train.txt"), (Split::Valid, "valid.txt"), (Split::Test, "test.txt")] {
        let path = dir.join(file);
        report.files.push(path.display().to_string());
        let text = read_text(&path, false)?;
        for (n, line) in text.lines().enumerate() {
            let line_no = n as u64 + 1;
            if line.trim().is_empty() {
                continue;
            }
            report.rows_read += 1;
            let mut parts = line.trim_end_matches(['\t', '\r']).split('\t');
            let uidx = parts.next().unwrap_or_default().trim();
            let Some(user) = user_key.get(uidx) else {
                report.skip_row(&path, line_no, "unknown user", format!("user index `{uidx}` is not in users.txt"))?;
                continue;
            };
            if parts.next().and_then(|p| p.trim().parse::<u32>().ok()).is_none() {
                report.skip_row(
                    &path,
                    line_no,
                    "bad sequence line",
                    "second field (target position) is not a number",
                )?;
                continue;
            }
            let mut events = Vec::new();
            let mut bad = None;
            for tok in parts {
                let f: Vec<&str> = tok.split('|').collect();
                let pos = f.get(1).and_then(|p| p.parse::<i64>().ok());
                match (f.len(), pos) {
                    (3, Some(pos)) if item_site.contains_key(f[0]) => events.push((f[0], pos)),
                    (3, Some(_)) => {
                        bad = Some(("unknown item", format!("item `{}` is in neither catalog", f[0])));
                        break;
                    }
                    _ => {
                        bad = Some(("bad sequence line", format!("token `{tok}` is not item|pos|pos")));
                        break;
                    }
                }
            }
            if let Some((kind, detail)) = bad {
                report.skip_row(&path, line_no, kind, detail)?;
                continue;
            }
            for (item, pos) in events {
                if seen.insert((user.clone(), item.to_string(), pos)) {
                    interactions.push(Interaction {
                        user: user.clone(),
                        site: item_site[item].to_string(),
                        product: item.to_string(),
                        kind: InteractionKind::Review,
                        value: None,
                        text: None,
                        time: Some(EventTime::Sequence(pos)),
                        split,
                    });
                }
            }
            report.rows_imported += 1;
        }
        progress.inc(1);
    }
    report.interactions = interactions.len() as u64;
    let sites = vec![
        Site { key: ART.into(), name: "Amazon Arts, Crafts & Sewing".into(), dataset: DATASET.into() },
        Site { key: OFFICE.into(), name: "Amazon Office Products".into(), dataset: DATASET.into() },
    ];
    Ok(Import { sites, products, interactions, report })
}

fn read_items(path: &Path, report: &mut ImportReport) -> Result<Vec<RawItem>> {
    let mut rdr = csv_reader(path, b',', true)?;
    let header = Header::read(path, &mut rdr)?;
    let c_before = header.require(path, "idBefore")?;
    let c_title = header.require(path, "item_title")?;
    let c_after = header.require(path, "idAfter")?;
    let c_attr = header.require(path, "item_attribute")?;
    let mut out = Vec::new();
    let mut rec = csv::ByteRecord::new();
    loop {
        match rdr.read_byte_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(csv_error(path, e)),
        }
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        report.rows_read += 1;
        if rec.len() != header.len() {
            report.skip_row(
                path,
                line,
                "wrong column count",
                format!("expected {} columns, found {}", header.len(), rec.len()),
            )?;
            continue;
        }
        let f = match utf8_fields(&rec) {
            Ok(f) => f,
            Err(i) => {
                report.skip_row(path, line, "invalid UTF-8", format!("invalid UTF-8 in column {}", i + 1))?;
                continue;
            }
        };
        let id_after = f[c_after].trim();
        if id_after.parse::<u32>().is_err() {
            report.skip_row(path, line, "bad id", format!("idAfter `{id_after}` is not a number"))?;
            continue;
        }
        out.push(RawItem {
            id_before: f[c_before].trim().to_string(),
            id_after: id_after.to_string(),
            title: clean_text(f[c_title]),
            attribute: clean_text(f[c_attr]).split(' ').filter(|w| !w.is_empty()).map(str::to_string).collect(),
        });
        report.rows_imported += 1;
    }
    if out.is_empty() && report.rows_read == 0 {
        return Err(Error::Empty { path: path.into() });
    }
    Ok(out)
}

/// Splits each item's attribute words into category and brand (see the module docs).
fn split_items(site: &str, top: &str, raw: Vec<RawItem>) -> Vec<Product> {
    const MAX_BRAND_WORDS: usize = 5;
    let split_at: Vec<Option<usize>> = raw
        .iter()
        .map(|r| {
            let first = r.title.split(' ').next()?;
            (1..r.attribute.len()).find(|&j| r.attribute[j] == first && r.attribute.len() - j <= MAX_BRAND_WORDS)
        })
        .collect();
    let known: HashSet<String> =
        raw.iter().zip(&split_at).filter_map(|(r, s)| s.map(|j| r.attribute[..j].join(" "))).collect();
    let top_words: Vec<&str> = top.split(' ').collect();
    raw.into_iter()
        .zip(split_at)
        .map(|(r, s)| {
            let n = r.attribute.len();
            let j = s.or_else(|| {
                (1..n).rev().find(|&j| n - j <= MAX_BRAND_WORDS && known.contains(&r.attribute[..j].join(" ")))
            });
            let (cat_words, brand) = match j {
                Some(j) => (&r.attribute[..j], canonical_brand(&r.attribute[j..].join(" "))),
                None => (&r.attribute[..], None),
            };
            let mut category = Vec::new();
            if cat_words.len() >= top_words.len()
                && cat_words[..top_words.len()].iter().zip(&top_words).all(|(a, b)| a == b)
            {
                category.push(top.to_string());
                if cat_words.len() > top_words.len() {
                    category.push(cat_words[top_words.len()..].join(" "));
                }
            } else if !cat_words.is_empty() {
                category.push(cat_words.join(" "));
            }
            let mut p = Product::new(site, r.id_after, r.title);
            p.brand = brand;
            p.category = category;
            p.attributes.insert("source_id".into(), r.id_before);
            p.refresh_missing();
            p
        })
        .collect()
}
