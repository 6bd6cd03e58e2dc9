//! `cdrib`: the CDRIB cold-start cross-domain split of Amazon Toys & Games ("game") and
//! Video Games ("video"; CDRIB's `dataset/preprocessing/Filter_data_cold.py`): ids only,
//! with the published train/valid/test files kept as the interactions' split. Users below the overlap bound are the same people in both domains;
//! the others are different people in each domain and get per-domain keys.

use std::collections::HashSet;
use std::path::Path;

use crate::progress::ProgressBar;
use warmstart_core::{Interaction, InteractionKind, Product, Site, Split};

use crate::error::Result;
use crate::report::ImportReport;
use crate::util::read_text;
use crate::Import;

/// Dataset group name.
pub const DATASET: &str = "cdrib-game-video";
/// Domains (sub-directories) and their site keys.
pub const DOMAINS: [(&str, &str); 2] = [("game", "cdrib-game"), ("video", "cdrib-video")];
/// Users `0..OVERLAP_USERS` are the same people in both domains (see the data README).
pub const OVERLAP_USERS: u32 = 2179;

/// Key of user `u` of `domain`.
pub fn user_key(domain: &str, u: u32, overlap: u32) -> String {
    if u < overlap {
        format!("cdrib:{u}")
    } else {
        format!("cdrib-{domain}:{u}")
    }
}

/// Imports `dir/{game,video}/{train,valid,test}.txt`.
pub fn import(dir: &Path, overlap: u32, strict: bool, progress: &ProgressBar) -> Result<Import> {
    let mut report = ImportReport::new("cdrib", strict);
    let mut products = Vec::new();
    let mut interactions = Vec::new();
    let mut sites = Vec::new();
    for (domain, site) in DOMAINS {
        sites.push(Site { key: site.into(), name: format!("CDRIB {domain}"), dataset: DATASET.into() });
        let mut items: HashSet<u32> = HashSet::new();
        let mut seen: HashSet<(u32, u32)> = HashSet::new();
        for (split, file) in [(Split::Train, "train.txt"), (Split::Valid, "valid.txt"), (Split::Test, "test.txt")] {
            let path = dir.join(domain).join(file);
            report.files.push(path.display().to_string());
            let text = read_text(&path, false)?;
            for (n, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                report.rows_read += 1;
                let f: Vec<&str> = line.split_whitespace().collect();
                let parsed = (f.len() == 2).then(|| (f[0].parse::<u32>().ok(), f[1].parse::<u32>().ok()));
                let Some((Some(u), Some(i))) = parsed else {
                    report.skip_row(
                        &path,
                        n as u64 + 1,
                        "bad line",
                        format!("expected `user<TAB>item` numbers, got `{line}`"),
                    )?;
                    continue;
                };
                if !seen.insert((u, i)) {
                    report.skip_row(&path, n as u64 + 1, "duplicate row", format!("user {u} item {i} again"))?;
                    continue;
                }
                items.insert(i);
                interactions.push(Interaction {
                    user: user_key(domain, u, overlap),
                    site: site.into(),
                    product: i.to_string(),
                    kind: InteractionKind::Review,
                    value: None,
                    text: None,
                    time: None,
                    split,
                });
                report.rows_imported += 1;
            }
            progress.inc(1);
        }
        let mut ids: Vec<u32> = items.into_iter().collect();
        ids.sort_unstable();
        products.extend(ids.into_iter().map(|i| Product::new(site, i.to_string(), "")));
    }
    report.products = products.len() as u64;
    report.interactions = interactions.len() as u64;
    Ok(Import { sites, products, interactions, report })
}
