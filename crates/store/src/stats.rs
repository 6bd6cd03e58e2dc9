//! Store statistics: sizes, overlap between sites, cold-start users, missing-field rates.

use std::collections::BTreeMap;

use serde::Serialize;

/// Counts for one site.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SiteStats {
    /// Site key.
    pub key: String,
    /// Display name.
    pub name: String,
    /// Dataset group.
    pub dataset: String,
    /// Products.
    pub products: i64,
    /// Products with an image.
    pub products_with_image: i64,
    /// Users with an interaction on the site.
    pub users: i64,
    /// Interactions on the site.
    pub interactions: i64,
    /// Cold-start test users: no training interaction on this site, some in the test split.
    pub cold_start_test_users: i64,
    /// Cold-start validation users: no training interaction on this site, some in the validation split.
    pub cold_start_valid_users: i64,
    /// Share of products missing each field.
    pub missing: BTreeMap<String, f64>,
}

/// Counts for one dataset group.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DatasetStats {
    /// Group name.
    pub name: String,
    /// Site keys.
    pub sites: Vec<String>,
    /// Products.
    pub products: i64,
    /// Distinct users with an interaction in the group.
    pub users: i64,
    /// Interactions.
    pub interactions: i64,
}

/// Users active on both of two sites.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Overlap {
    /// First site.
    pub a: String,
    /// Second site.
    pub b: String,
    /// Users active on both.
    pub users: i64,
}

/// Everything `warmstart stats` prints.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StoreStats {
    /// Store file or database.
    pub store: String,
    /// Totals over the store.
    pub totals: BTreeMap<String, i64>,
    /// Per dataset group.
    pub datasets: Vec<DatasetStats>,
    /// Per site.
    pub sites: Vec<SiteStats>,
    /// Overlapping users per pair of sites (pairs with any).
    pub overlap: Vec<Overlap>,
}

/// Dataset groups from per-site stats and per-group (name, distinct users, interactions)
/// rows.
pub(crate) fn datasets_of(sites: &[SiteStats], groups: Vec<(String, i64, i64)>) -> Vec<DatasetStats> {
    groups
        .into_iter()
        .map(|(name, users, interactions)| {
            let members: Vec<&SiteStats> = sites.iter().filter(|s| s.dataset == name).collect();
            DatasetStats {
                sites: members.iter().map(|s| s.key.clone()).collect(),
                products: members.iter().map(|s| s.products).sum(),
                name,
                users,
                interactions,
            }
        })
        .collect()
}
