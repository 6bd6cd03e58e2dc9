//! `movielens-100k`: `u.item` (pipe-separated, Latin-1) and `u.data` (tab-separated ratings).

use std::collections::HashSet;
use std::path::Path;

use crate::progress::ProgressBar;
use warmstart_core::{EventTime, Interaction, InteractionKind, Product, Site, Split};

use crate::error::Result;
use crate::normalize::clean_text;
use crate::report::ImportReport;
use crate::util::read_text;
use crate::Import;

/// Dataset group and site key.
pub const DATASET: &str = "movielens-100k";

const GENRES: [&str; 19] = [
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
];

/// Imports `dir/u.item` and `dir/u.data`.
pub fn import(dir: &Path, strict: bool, progress: &ProgressBar) -> Result<Import> {
    let mut report = ImportReport::new(DATASET, strict);
    let item_path = dir.join("u.item");
    report.files.push(item_path.display().to_string());
    let text = read_text(&item_path, true)?;
    let mut products = Vec::new();
    let mut ids = HashSet::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        report.rows_read += 1;
        let f: Vec<&str> = line.split('|').collect();
        if f.len() != 5 + GENRES.len() || f[0].parse::<u32>().is_err() {
            report.skip_row(
                &item_path,
                n as u64 + 1,
                "wrong column count",
                format!("expected {} fields, found {}", 5 + GENRES.len(), f.len()),
            )?;
            continue;
        }
        let mut p = Product::new(DATASET, f[0], clean_text(f[1]));
        let genres: Vec<&str> =
            GENRES.iter().zip(&f[5..]).filter(|(_, flag)| flag.trim() == "1").map(|(g, _)| *g).collect();
        p.category = vec!["Movies".into()];
        if let Some(g) = genres.first() {
            p.category.push(g.to_string());
        }
        if !genres.is_empty() {
            p.attributes.insert("genres".into(), genres.join("|"));
        }
        if !f[2].trim().is_empty() {
            p.attributes.insert("release_date".into(), f[2].trim().into());
        }
        if !f[4].trim().is_empty() {
            p.attributes.insert("url".into(), f[4].trim().into());
        }
        p.refresh_missing();
        ids.insert(f[0].to_string());
        products.push(p);
        report.rows_imported += 1;
    }
    progress.inc(1);

    let data_path = dir.join("u.data");
    report.files.push(data_path.display().to_string());
    let text = read_text(&data_path, false)?;
    let mut interactions = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        report.rows_read += 1;
        let f: Vec<&str> = line.split('\t').collect();
        let parsed = (f.len() == 4).then(|| (f[0].parse::<u32>(), f[2].parse::<f32>(), f[3].parse::<i64>()));
        let Some((Ok(user), Ok(rating), Ok(ts))) = parsed else {
            report.skip_row(
                &data_path,
                n as u64 + 1,
                "bad rating line",
                "expected `user<TAB>item<TAB>rating<TAB>timestamp`",
            )?;
            continue;
        };
        if !ids.contains(f[1]) {
            report.skip_row(&data_path, n as u64 + 1, "unknown item", format!("item {} is not in u.item", f[1]))?;
            continue;
        }
        if !(0.5..=5.0).contains(&rating) {
            report.skip_row(&data_path, n as u64 + 1, "bad rating", format!("rating {rating} outside 1..5"))?;
            continue;
        }
        interactions.push(Interaction {
            user: format!("movielens:{user}"),
            site: DATASET.into(),
            product: f[1].into(),
            kind: InteractionKind::Rating,
            value: Some(rating),
            text: None,
            time: Some(EventTime::Timestamp(ts)),
            split: Split::Train,
        });
        report.rows_imported += 1;
    }
    progress.inc(1);
    report.products = products.len() as u64;
    report.interactions = interactions.len() as u64;
    let sites = vec![Site { key: DATASET.into(), name: "MovieLens 100K".into(), dataset: DATASET.into() }];
    Ok(Import { sites, products, interactions, report })
}
