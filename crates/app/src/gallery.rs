//! Galleries of cold-start recommendations: users held out of training on one shop, their
//! history on the other shops and a model's top five there, with photos where the catalog
//! has them (titles otherwise).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use warmstart_core::{top_k, Dataset, HistoryWeights, ItemId, Rng, SiteId, UserId};
use warmstart_models::Recommender;
use warmstart_viz::{Gallery, GalleryItem, GalleryRow};

use crate::{Error, Result};

/// Up to `n` users active on two or more shops (persona shoppers first when the dataset has
/// them), each with a target shop drawn from theirs; seeded.
pub fn pick_users(d: &Dataset, n: usize, seed: u64) -> HashMap<UserId, SiteId> {
    if n == 0 {
        return HashMap::new();
    }
    let mut sites: BTreeMap<UserId, Vec<SiteId>> = BTreeMap::new();
    for r in &d.interactions {
        let s = sites.entry(r.user).or_default();
        let site = d.site_of(r.item);
        if !s.contains(&site) {
            s.push(site);
        }
    }
    let mut rng = Rng::new(seed ^ 0x9a11);
    let mut cross: Vec<(UserId, Vec<SiteId>)> = sites.into_iter().filter(|(_, s)| s.len() > 1).collect();
    rng.shuffle(&mut cross);
    // persona shoppers (simulated with known tastes) first
    cross.sort_by_key(|(u, _)| !d.users[*u as usize].starts_with("persona:"));
    cross
        .into_iter()
        .take(n)
        .map(|(u, mut s)| {
            s.sort_unstable();
            let target = s[rng.below(s.len())];
            (u, target)
        })
        .collect()
}

/// Shown history items per user.
const HISTORY_SHOWN: usize = 8;
/// Recommendations per user.
const TOP: usize = 5;

/// Writes the gallery of `model`'s recommendations for the `held` users; returns the file and
/// a summary (users, hits in the top five).
pub fn write_gallery(
    path: &Path,
    d: &Dataset,
    model: &dyn Recommender,
    held: &HashMap<UserId, SiteId>,
    title: &str,
) -> Result<(PathBuf, serde_json::Value)> {
    let weights = HistoryWeights::default();
    let mut per_user: HashMap<UserId, Vec<(ItemId, f32)>> = HashMap::new();
    for r in d.interactions.iter().filter(|r| held.contains_key(&r.user)) {
        per_user.entry(r.user).or_default().push((r.item, weights.weight(r, 0.0)));
    }
    let mut users: Vec<(&UserId, &SiteId)> = held.iter().collect();
    users.sort();
    struct Case {
        user: UserId,
        site: SiteId,
        /// History size and its heaviest items (the ones shown).
        history_len: usize,
        shown: Vec<ItemId>,
        top: Vec<ItemId>,
        relevant: Vec<ItemId>,
    }
    let mut cases = Vec::new();
    for (&user, &site) in users {
        let rows = per_user.remove(&user).unwrap_or_default();
        // one entry per item, weights summed
        let mut merged: BTreeMap<ItemId, f32> = BTreeMap::new();
        let mut relevant = Vec::new();
        for (i, w) in rows {
            if d.site_of(i) == site {
                relevant.push(i);
            } else {
                *merged.entry(i).or_default() += w;
            }
        }
        relevant.sort_unstable();
        relevant.dedup();
        let history: Vec<(ItemId, f32)> = merged.into_iter().collect();
        let range = d.sites[site as usize].items.clone();
        let mut scores = vec![0f32; range.len()];
        model.score(&history, range.clone(), &mut scores)?;
        let top = top_k(&scores, TOP).into_iter().map(|j| range.start + j as ItemId).collect();
        let mut heaviest = history.clone();
        heaviest.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let shown = heaviest.iter().take(HISTORY_SHOWN).map(|x| x.0).collect();
        cases.push(Case { user, site, history_len: history.len(), shown, top, relevant });
    }
    // photos of every shown item, read in one pass over each archive
    let mut shown: Vec<ItemId> = Vec::new();
    for c in &cases {
        shown.extend(&c.shown);
        shown.extend(&c.top);
    }
    shown.sort_unstable();
    shown.dedup();
    let refs: Vec<(ItemId, String)> =
        shown.iter().filter_map(|&i| d.products[i as usize].image.clone().map(|r| (i, r))).collect();
    let mut photos: HashMap<ItemId, Vec<u8>> = HashMap::new();
    warmstart_ingest::images::read_images(&refs, |i, bytes| {
        if let Some(thumb) = bytes.ok().and_then(|b| thumbnail(&b)) {
            photos.insert(i, thumb);
        }
        Ok::<(), Error>(())
    })?;
    let card = |i: ItemId, hit: bool| {
        let p = &d.products[i as usize];
        let mut detail = vec![d.sites[p.site as usize].key.clone()];
        if let Some(c) = p.category.last() {
            detail.push(c.clone());
        }
        if let Some(price) = p.price_usd {
            detail.push(format!("${price:.2}"));
        }
        GalleryItem {
            title: if p.title.is_empty() { p.external_id.clone() } else { p.title.clone() },
            detail: detail.join(" · "),
            image: photos.get(&i).cloned(),
            hit,
        }
    };
    let mut rows = Vec::new();
    let mut hits_total = 0usize;
    for c in &cases {
        let hits = c.top.iter().filter(|i| c.relevant.binary_search(i).is_ok()).count();
        hits_total += hits;
        rows.push(GalleryRow {
            user: d.users[c.user as usize].clone(),
            note: format!(
                "new on {}: {} elsewhere ({} shown), {} held out there, {hits} of them in the top {TOP}",
                d.sites[c.site as usize].key,
                items(c.history_len),
                c.shown.len(),
                items(c.relevant.len())
            ),
            history: c.shown.iter().map(|&i| card(i, false)).collect(),
            recommendations: c.top.iter().map(|&i| card(i, c.relevant.binary_search(&i).is_ok())).collect(),
        });
    }
    let gallery = Gallery {
        title: title.to_string(),
        intro: format!(
            "{} ({}). Each user's items on one shop were held out of training; the model ranks that shop's whole \
             catalog from their history on the other shops. Green: a held-out item the user really took.",
            model.name(),
            d.sites.iter().map(|s| s.key.as_str()).collect::<Vec<_>>().join(", ")
        ),
        rows,
    };
    let file = gallery.write(path)?;
    let summary = serde_json::json!({
        "file": file, "users": cases.len(), "hits_in_top5": hits_total, "photos": photos.len(),
    });
    Ok((file, summary))
}

/// A JPEG thumbnail at most 124 × 150 pixels; `None` for bytes that are no image.
fn thumbnail(bytes: &[u8]) -> Option<Vec<u8>> {
    let img = image::load_from_memory(bytes).ok()?.thumbnail(124, 150).to_rgb8();
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg).ok()?;
    Some(out.into_inner())
}

fn items(n: usize) -> String {
    if n == 1 {
        "1 item".into()
    } else {
        format!("{n} items")
    }
}
