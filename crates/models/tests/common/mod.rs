//! Shared fixture of the model tests: a two-site world where users like one group of items on
//! both sites, and the cold-start check on it.

use warmstart_core::{CsrMatrix, Dataset, DatasetBuilder, ItemVectors, ProductMeta, Rng};
use warmstart_models::Recommender;

/// Two sites of 40 items in 4 groups (content: the group's axis plus noise); 160 users,
/// each liking one group on both sites.
pub fn world() -> (Dataset, ItemVectors, CsrMatrix) {
    let mut b = DatasetBuilder::default();
    let mut rng = Rng::new(1);
    let mut vectors = ItemVectors { dim: 6, ..Default::default() };
    for site in 0..2 {
        let s = b.push_site(&format!("site-{site}"), "site", "test");
        for i in 0..40 {
            b.push_product(ProductMeta {
                site: s,
                external_id: format!("{site}-{i}"),
                title: format!("item {i}"),
                brand: Some(format!("brand {}", i % 4)),
                category: vec!["all".into(), format!("group {}", i % 4)],
                price_usd: Some(10.0 * (1 + i % 4) as f64),
                image: None,
            });
            for k in 0..6 {
                vectors.data.push(if k == i % 4 { 1.0 } else { 0.0 } + 0.3 * rng.normal_f32());
            }
            vectors.present.push(true);
        }
    }
    let mut trip = Vec::new();
    for u in 0..160u32 {
        b.push_user(format!("u{u}"));
        let g = u % 4;
        for site in 0..2u32 {
            for _ in 0..4 {
                let item = site * 40 + g + 4 * rng.below(10) as u32;
                trip.push((u, item, 1.0));
            }
        }
    }
    let d = b.finish().unwrap();
    let m = CsrMatrix::from_triplets(160, d.n_items(), &trip).map_values(|_| 1.0);
    (d, vectors, m)
}

/// Precision@5 on site 1 of new users with 3 site-0 items of their group.
pub fn cold_start_precision(model: &dyn Recommender) -> f64 {
    let mut hits = 0;
    for g in 0..4u32 {
        let history = [(g, 1.0), (g + 4, 1.0), (g + 8, 1.0)];
        let recs = model.recommend(&history, 40..80, 5, &[]).unwrap();
        hits += recs.iter().filter(|(i, _)| i % 4 == g).count();
    }
    hits as f64 / 20.0
}
