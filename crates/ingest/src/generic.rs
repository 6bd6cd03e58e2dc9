//! Generic JSON Lines and CSV importers with a documented schema (see README.md,
//! "Bring your own data").
//!
//! Product fields: `site`, `id`, `title`, `description`, `brand`, `category` (a path such as
//! `"Apparel > Topwear"` or a JSON array), `price` (text such as `"$1,299.00"` or a number),
//! `currency`, `image`; any other field becomes a free attribute.
//! Interaction fields: `user`, `site`, `product`, `kind` (view, wishlist, cart, purchase,
//! rating, review), `value`, `text`, `timestamp` (Unix seconds or ISO 8601 date/time),
//! `seq`, `split` (train, valid, test). In JSON Lines a record with a `user` field is an
//! interaction, any other a product.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::path::Path;

use crate::progress::ProgressBar;
use serde_json::Value;
use warmstart_core::{EventTime, ImageRef, Interaction, InteractionKind, Product, Site, Split};

use crate::error::{Error, Result};
use crate::normalize::{canonical_brand, clean_text, parse_price, split_category};
use crate::report::ImportReport;
use crate::util::{csv_error, csv_reader, open_nonempty, utf8_fields, Header};
use crate::Import;

/// Options shared by the generic importers.
#[derive(Debug, Clone)]
pub struct GenericOptions {
    /// Site for records without a `site` field.
    pub default_site: Option<String>,
    /// Dataset group for the sites created.
    pub dataset: String,
    /// Currency for prices that name none.
    pub default_currency: Option<String>,
    /// Kind for interactions without a `kind` field.
    pub default_kind: InteractionKind,
    /// CSV only: whether rows are products or interactions.
    pub records: RecordType,
    /// CSV only: field name → column name overrides (`title=productDisplayName`).
    pub column_map: HashMap<String, String>,
    /// CSV only: field delimiter.
    pub delimiter: u8,
    /// Prefix added to user ids (a namespace, so different sources do not collide).
    pub user_prefix: String,
    /// Stop at the first bad row.
    pub strict: bool,
}

impl Default for GenericOptions {
    fn default() -> Self {
        GenericOptions {
            default_site: None,
            dataset: "custom".into(),
            default_currency: None,
            default_kind: InteractionKind::Purchase,
            records: RecordType::Products,
            column_map: HashMap::new(),
            delimiter: b',',
            user_prefix: String::new(),
            strict: false,
        }
    }
}

/// What the rows of a CSV file are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordType {
    /// Catalog rows.
    Products,
    /// Interaction rows.
    Interactions,
}

/// Parses `--map title=name,price=cost` into a field → column map.
pub fn parse_column_map(spec: &str) -> Result<HashMap<String, String>> {
    let mut m = HashMap::new();
    for pair in spec.split(',').filter(|p| !p.trim().is_empty()) {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| Error::Options(format!("column mapping `{pair}` is not field=column")))?;
        let k = k.trim();
        if !PRODUCT_FIELDS.contains(&k) && !INTERACTION_FIELDS.contains(&k) {
            return Err(Error::Options(format!("unknown field `{k}` in column mapping")));
        }
        m.insert(k.to_string(), v.trim().to_string());
    }
    Ok(m)
}

const PRODUCT_FIELDS: &[&str] =
    &["site", "id", "title", "description", "brand", "category", "price", "currency", "image"];
const INTERACTION_FIELDS: &[&str] = &["user", "site", "product", "kind", "value", "text", "timestamp", "seq", "split"];

/// One record's fields as text, whatever the file format.
type Fields = BTreeMap<String, String>;

struct Builder<'a> {
    opts: &'a GenericOptions,
    report: ImportReport,
    products: Vec<Product>,
    interactions: Vec<Interaction>,
    sites: BTreeSet<String>,
}

impl<'a> Builder<'a> {
    fn new(source: &str, opts: &'a GenericOptions) -> Self {
        Builder {
            opts,
            report: ImportReport::new(source, opts.strict),
            products: Vec::new(),
            interactions: Vec::new(),
            sites: BTreeSet::new(),
        }
    }

    fn site(&self, f: &Fields) -> Option<String> {
        f.get("site").map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).or_else(|| self.opts.default_site.clone())
    }

    fn product(&mut self, path: &Path, line: u64, mut f: Fields) -> Result<()> {
        let Some(site) = self.site(&f) else {
            return self.report.skip_row(path, line, "no site", "no `site` field and no --site given");
        };
        let id = f.remove("id").map(|s| s.trim().to_string()).unwrap_or_default();
        if id.is_empty() {
            return self.report.skip_row(path, line, "no id", "product has no `id`");
        }
        let mut p = Product::new(site.clone(), id, clean_text(f.get("title").map(String::as_str).unwrap_or("")));
        p.description = f.get("description").map(|d| clean_text(d)).filter(|d| !d.is_empty());
        p.brand = f.get("brand").and_then(|b| canonical_brand(b));
        p.category = f.get("category").map(|c| split_category(c)).unwrap_or_default();
        if let Some(raw) = f.get("price").filter(|s| !s.trim().is_empty()) {
            let with_currency = match f.get("currency") {
                Some(c) if !c.trim().is_empty() => format!("{raw} {}", c.trim()),
                _ => raw.clone(),
            };
            match parse_price(&with_currency, self.opts.default_currency.as_deref()) {
                Ok(pr) => p.price = Some(pr),
                Err(e) => self.report.drop_field(
                    path,
                    Some(line),
                    "price",
                    &short_reason(&e.to_string()),
                    format!("`{raw}`: {e}"),
                ),
            }
        }
        p.image = f.get("image").map(|s| s.trim()).filter(|s| !s.is_empty()).map(|s| ImageRef(s.to_string()));
        for (k, v) in f {
            if !PRODUCT_FIELDS.contains(&k.as_str()) && !v.trim().is_empty() {
                p.attributes.insert(k, clean_text(&v));
            }
        }
        p.refresh_missing();
        self.sites.insert(site);
        self.products.push(p);
        self.report.rows_imported += 1;
        Ok(())
    }

    fn interaction(&mut self, path: &Path, line: u64, f: Fields) -> Result<()> {
        let Some(site) = self.site(&f) else {
            return self.report.skip_row(path, line, "no site", "no `site` field and no --site given");
        };
        let get = |k: &str| f.get(k).map(|s| s.trim()).filter(|s| !s.is_empty());
        let (Some(user), Some(product)) = (get("user"), get("product")) else {
            return self.report.skip_row(path, line, "missing field", "interaction needs `user` and `product`");
        };
        let kind = match get("kind") {
            Some(k) => match k.parse::<InteractionKind>() {
                Ok(k) => k,
                Err(e) => return self.report.skip_row(path, line, "bad kind", e.to_string()),
            },
            None => self.opts.default_kind,
        };
        let value = match get("value").map(str::parse::<f32>) {
            Some(Ok(v)) if v.is_finite() => Some(v),
            Some(_) => {
                return self.report.skip_row(
                    path,
                    line,
                    "bad value",
                    format!("value `{}` is not a number", get("value").unwrap_or("")),
                )
            }
            None => None,
        };
        let time = match (get("timestamp"), get("seq")) {
            (Some(t), _) => match parse_timestamp(t) {
                Some(ts) => Some(EventTime::Timestamp(ts)),
                None => {
                    return self.report.skip_row(
                        path,
                        line,
                        "bad timestamp",
                        format!("timestamp `{t}` is not Unix seconds or an ISO 8601 date/time within years 1–9999"),
                    )
                }
            },
            (None, Some(s)) => match s.parse::<i64>() {
                Ok(s) => Some(EventTime::Sequence(s)),
                Err(_) => return self.report.skip_row(path, line, "bad seq", format!("seq `{s}` is not an integer")),
            },
            (None, None) => None,
        };
        let split = match get("split") {
            None | Some("train") => Split::Train,
            Some("valid") | Some("validation") => Split::Valid,
            Some("test") => Split::Test,
            Some(s) => {
                return self.report.skip_row(
                    path,
                    line,
                    "bad split",
                    format!("split `{s}` is not train, valid or test"),
                )
            }
        };
        self.interactions.push(Interaction {
            user: format!("{}{user}", self.opts.user_prefix),
            site: site.clone(),
            product: product.to_string(),
            kind,
            value,
            text: get("text").map(clean_text),
            time,
            split,
        });
        self.sites.insert(site);
        self.report.rows_imported += 1;
        Ok(())
    }

    fn finish(mut self) -> Import {
        self.report.products = self.products.len() as u64;
        self.report.interactions = self.interactions.len() as u64;
        let dataset = self.opts.dataset.clone();
        let sites =
            self.sites.into_iter().map(|k| Site { name: k.clone(), key: k, dataset: dataset.clone() }).collect();
        Import { sites, products: self.products, interactions: self.interactions, report: self.report }
    }
}

fn short_reason(s: &str) -> String {
    s.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

/// Latest time accepted: 9999-12-31T23:59:59Z, in Unix seconds.
pub const MAX_TIMESTAMP: i64 = 253_402_300_799;

/// Parses Unix seconds, `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SS[Z]` (UTC) into Unix seconds.
/// Times before year 1 or after year 9999, and out-of-range hours, minutes or seconds, are
/// rejected (`None`), never wrapped.
pub fn parse_timestamp(s: &str) -> Option<i64> {
    const MIN_TIMESTAMP: i64 = -62_135_596_800; // 0001-01-01T00:00:00Z
    if let Ok(v) = s.parse::<i64>() {
        return (MIN_TIMESTAMP..=MAX_TIMESTAMP).contains(&v).then_some(v);
    }
    let (date, time) = match s.split_once(['T', ' ']) {
        Some((d, t)) => (d, Some(t.trim_end_matches('Z'))),
        None => (s, None),
    };
    let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    if !(1..=9999).contains(&y) || !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    // days from civil (Howard Hinnant's algorithm)
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    let secs = match time {
        Some(t) => {
            let t = t.split(['+', '.']).next()?;
            let mut p = t.split(':').map(|x| x.parse::<i64>().ok());
            let (h, mi, se) = (p.next()??, p.next().flatten().unwrap_or(0), p.next().flatten().unwrap_or(0));
            // 24:00:00 is midnight at the end of the day; 60 seconds is a leap second
            if !(0..=24).contains(&h) || !(0..=59).contains(&mi) || !(0..=60).contains(&se) {
                return None;
            }
            h * 3600 + mi * 60 + se
        }
        None => 0,
    };
    Some(days * 86400 + secs)
}

fn json_to_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Array(a) => {
            let parts: Vec<String> = a.iter().filter_map(json_to_text).collect();
            Some(parts.join(" > "))
        }
        Value::Object(o) => o.get("name").and_then(json_to_text).or_else(|| Some(v.to_string())),
        other => Some(other.to_string()),
    }
}

/// Imports a JSON Lines file of products and/or interactions.
pub fn import_jsonl(path: &Path, opts: &GenericOptions, progress: &ProgressBar) -> Result<Import> {
    let mut b = Builder::new("jsonl", opts);
    b.report.files.push(path.display().to_string());
    let mut reader = BufReader::new(open_nonempty(path)?);
    let mut buf = Vec::new();
    let mut line = 0u64;
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        line += 1;
        let Ok(text) = std::str::from_utf8(&buf) else {
            b.report.rows_read += 1;
            b.report.skip_row(path, line, "invalid UTF-8", "line is not valid UTF-8")?;
            continue;
        };
        if text.trim().is_empty() {
            continue;
        }
        b.report.rows_read += 1;
        let obj = match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(o)) => o,
            Ok(_) => {
                b.report.skip_row(path, line, "not an object", "line is JSON but not an object")?;
                continue;
            }
            Err(e) => {
                b.report.skip_row(path, line, "invalid JSON", format!("invalid JSON: {e}"))?;
                continue;
            }
        };
        let fields: Fields = obj.iter().filter_map(|(k, v)| json_to_text(v).map(|t| (k.clone(), t))).collect();
        if fields.contains_key("user") {
            b.interaction(path, line, fields)?;
        } else {
            b.product(path, line, fields)?;
        }
        progress.inc(1);
    }
    if b.report.rows_read == 0 {
        return Err(Error::Empty { path: path.into() });
    }
    Ok(b.finish())
}

/// Imports a CSV file of products or interactions (`opts.records`), with the header naming
/// the columns and `opts.column_map` renaming them.
pub fn import_csv(path: &Path, opts: &GenericOptions, progress: &ProgressBar) -> Result<Import> {
    let mut b = Builder::new("csv", opts);
    b.report.files.push(path.display().to_string());
    let mut rdr = csv_reader(path, opts.delimiter, true)?;
    let header = Header::read(path, &mut rdr)?;
    let known = match opts.records {
        RecordType::Products => PRODUCT_FIELDS,
        RecordType::Interactions => INTERACTION_FIELDS,
    };
    // field name -> column index
    let mut columns: Vec<(String, usize)> = Vec::new();
    for field in known {
        let col = opts.column_map.get(*field).map(String::as_str).unwrap_or(field);
        match header.find(col) {
            Some(i) => columns.push((field.to_string(), i)),
            None if opts.column_map.contains_key(*field) => {
                return Err(header.require(path, col).unwrap_err());
            }
            None => {}
        }
    }
    let required: &[&str] = match opts.records {
        RecordType::Products => &["id"],
        RecordType::Interactions => &["user", "product"],
    };
    for r in required {
        if !columns.iter().any(|(f, _)| f == r) {
            header.require(path, opts.column_map.get(*r).map(String::as_str).unwrap_or(r))?;
        }
    }
    let mapped: BTreeSet<usize> = columns.iter().map(|c| c.1).collect();
    let mut rec = csv::ByteRecord::new();
    let names = rdr.byte_headers().map_err(|e| csv_error(path, e))?.clone();
    loop {
        match rdr.read_byte_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(csv_error(path, e)),
        }
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        b.report.rows_read += 1;
        if rec.len() != header.len() {
            b.report.skip_row(
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
                b.report.skip_row(path, line, "invalid UTF-8", format!("invalid UTF-8 in column {}", i + 1))?;
                continue;
            }
        };
        let mut fields: Fields = columns.iter().map(|(k, i)| (k.clone(), f[*i].to_string())).collect();
        if opts.records == RecordType::Products {
            for (i, v) in f.iter().enumerate() {
                if !mapped.contains(&i) {
                    let name = String::from_utf8_lossy(&names[i]).trim().to_string();
                    if !name.is_empty() && !fields.contains_key(&name) {
                        fields.insert(name, v.to_string());
                    }
                }
            }
            b.product(path, line, fields)?;
        } else {
            b.interaction(path, line, fields)?;
        }
        progress.inc(1);
    }
    Ok(b.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(parse_timestamp("0"), Some(0));
        assert_eq!(parse_timestamp("1970-01-02"), Some(86400));
        assert_eq!(parse_timestamp("2024-03-01T12:00:00Z"), Some(1709294400));
        assert_eq!(parse_timestamp("2024-13-01"), None);
        assert_eq!(parse_timestamp("yesterday"), None);
        assert_eq!(parse_timestamp("9999-12-31T23:59:59Z"), Some(MAX_TIMESTAMP));
    }

    #[test]
    fn huge_timestamps_are_rejected_not_wrapped() {
        for t in [
            "300000000000-01-01",
            "2024-01-01T99999999999999999:00",
            "2024-01-01T25:00",
            "2024-01-01T10:61:00",
            "9223372036854775807",
            "-9223372036854775808",
            "10000-01-01",
            "0-01-01",
        ] {
            assert_eq!(parse_timestamp(t), None, "{t}");
        }
    }

    #[test]
    fn a_huge_timestamp_skips_its_row_with_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        std::fs::write(
            &path,
            concat!(
                "{\"user\":\"a\",\"site\":\"s\",\"product\":\"1\",\"timestamp\":\"2024-01-01\"}\n",
                "{\"user\":\"a\",\"site\":\"s\",\"product\":\"2\",\"timestamp\":\"300000000000-01-01\"}\n",
            ),
        )
        .unwrap();
        let import = import_jsonl(&path, &GenericOptions::default(), &ProgressBar::hidden()).unwrap();
        assert_eq!(import.interactions.len(), 1);
        assert_eq!(import.report.rows_skipped.get("bad timestamp"), Some(&1));
        let example = &import.report.examples[0];
        assert_eq!(example.line, Some(2));
        assert!(example.reason.contains("300000000000-01-01"), "{}", example.reason);
        // strict mode stops with the file and line
        let strict = GenericOptions { strict: true, ..Default::default() };
        let err = import_jsonl(&path, &strict, &ProgressBar::hidden()).unwrap_err().to_string();
        assert!(err.contains("events.jsonl") && err.contains('2'), "{err}");
    }

    #[test]
    fn column_map() {
        let m = parse_column_map("title=productDisplayName, price=cost").unwrap();
        assert_eq!(m["title"], "productDisplayName");
        assert!(parse_column_map("bogus=x").is_err());
        assert!(parse_column_map("title").is_err());
    }
}
