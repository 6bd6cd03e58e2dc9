//! Requests built from what the store already knows: a stored shopper's history as a client
//! would send it, and zero-shot ranking of a catalog for a free-text query through the text
//! tower of the vectors' model. `warmstart recommend` calls both; a server route could too.

use std::ops::Range;
use std::path::Path;

use warmstart_core::{Dataset, EventTime, InteractionKind, ItemId};
use warmstart_embed::LoadedModel;
use warmstart_store::Store;

use crate::request::HistoryEntry;
use crate::vectors::{load_vectors, VectorSpec};
use crate::{Error, Result};

/// The stored history of `user_key` as known products by site and id (with kind, rating and
/// time), leaving out the items in `skip` (the target site, for a cold start).
pub fn stored_history(d: &Dataset, user_key: &str, skip: Option<Range<ItemId>>) -> Result<Vec<HistoryEntry>> {
    let user = d
        .users
        .iter()
        .position(|u| u == user_key)
        .ok_or_else(|| Error::NotFound { what: "user", key: user_key.to_string() })? as u32;
    Ok(d.interactions
        .iter()
        .filter(|r| r.user == user && !skip.as_ref().is_some_and(|s| s.contains(&r.item)))
        .map(|r| {
            let p = &d.products[r.item as usize];
            HistoryEntry {
                site: Some(d.sites[p.site as usize].key.clone()),
                id: Some(p.external_id.clone()),
                kind: r.kind.into(),
                rating: r.value.filter(|_| matches!(r.kind, InteractionKind::Rating | InteractionKind::Review)),
                time: match r.time {
                    Some(EventTime::Timestamp(t)) => Some(t),
                    _ => None,
                },
                ..Default::default()
            }
        })
        .collect())
}

/// Ranks `range` by cosine between the encoded `query` and the stored vectors of `spec`
/// (items in `exclude` and items without a vector are left out): the `k` best, best first.
#[allow(clippy::too_many_arguments)]
pub fn zero_shot(
    store: &Store,
    dataset: &str,
    d: &Dataset,
    spec: &VectorSpec,
    home: &Path,
    query: &str,
    range: Range<ItemId>,
    exclude: &[ItemId],
    k: usize,
) -> Result<Vec<(ItemId, f32)>> {
    let VectorSpec::Single(id) = spec else {
        return Err(Error::bad(
            "vectors",
            "zero-shot queries need one vector model (e.g. minilm or clip/image), not a fusion",
        ));
    };
    let vectors = load_vectors(store, dataset, d, spec, &mut |_| {})?;
    let model_name = id.split('/').next().unwrap_or(id);
    let model = LoadedModel::load(home, model_name)?;
    let tower =
        model.text().ok_or_else(|| Error::bad("vectors", format!("{model_name} has no text tower for a query")))?;
    // a text query meets the catalog in the model's shared space: its own text vectors, or
    // the image vectors of a text–image model
    if !(tower.id() == *id || model.image().is_some_and(|m| m.id() == *id)) {
        return Err(Error::bad("vectors", format!("`{id}` vectors are not in the space of {model_name}'s text tower")));
    }
    if tower.dim() != vectors.dim {
        return Err(Error::bad(
            "vectors",
            format!("query dimension {} ≠ vector dimension {}", tower.dim(), vectors.dim),
        ));
    }
    let (q, _) = tower.encode_texts(&[query])?;
    let mut scores: Vec<f32> =
        range
            .clone()
            .map(|i| {
                if vectors.present[i as usize] {
                    warmstart_scoring::dot(vectors.row(i), &q)
                } else {
                    f32::NEG_INFINITY
                }
            })
            .collect();
    for &e in exclude {
        if range.contains(&e) {
            scores[(e - range.start) as usize] = f32::NEG_INFINITY;
        }
    }
    Ok(warmstart_models::best_of(&scores, range.start, k).into_iter().filter(|e| e.1.is_finite()).collect())
}
