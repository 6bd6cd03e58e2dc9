//! Pictures of an item embedding: k-means clusters (sizes as bars, representative titles),
//! and a t-SNE map of a sample coloured by cluster, by top-level category and by shop.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use warmstart_analysis::{KMeans, KMeansConfig, Tsne, TsneConfig};
use warmstart_core::{Dataset, Rng};
use warmstart_viz::{BarChart, ScatterChart};

use crate::progress;

/// What to draw.
pub struct ItemMapOptions<'a> {
    /// Title prefix (model and dataset).
    pub label: &'a str,
    /// Items drawn in the t-SNE map (a seeded sample).
    pub map_items: usize,
    /// k of k-means.
    pub clusters: usize,
    /// Seed.
    pub seed: u64,
    /// No progress bars.
    pub quiet: bool,
}

/// Draws the pictures into `dir`; returns their paths and a JSON summary (cluster sizes,
/// titles nearest each centroid, the t-SNE KL divergence).
pub fn item_maps(
    dir: &Path,
    d: &Dataset,
    vectors: &[f32],
    dim: usize,
    o: &ItemMapOptions,
) -> anyhow::Result<(Vec<PathBuf>, serde_json::Value)> {
    let n = d.n_items();
    anyhow::ensure!(vectors.len() == n * dim && n > 0, "{} values for {n} items of dimension {dim}", vectors.len());
    let k = o.clusters.min(n);
    let km = KMeans::fit(&KMeansConfig::builder().k(k).seed(o.seed).build()?, vectors, dim)?;
    // clusters in decreasing size, renumbered
    let sizes = km.sizes();
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by_key(|&c| std::cmp::Reverse(sizes[c]));
    let rank: HashMap<usize, usize> = order.iter().enumerate().map(|(r, &c)| (c, r)).collect();
    let mut pictures = BarChart {
        title: format!("{}: k-means cluster sizes (k = {k}, {n} items)", o.label),
        x_label: "cluster".into(),
        y_label: "items".into(),
        bars: order.iter().enumerate().map(|(r, &c)| (format!("c{r}"), sizes[c] as f64)).collect(),
    }
    .write(&dir.join("cluster-sizes"))?;
    // titles nearest each centroid
    let row = |i: usize| &vectors[i * dim..(i + 1) * dim];
    let mut clusters_json = Vec::new();
    for (r, &c) in order.iter().enumerate() {
        let centre = &km.centroids[c * dim..(c + 1) * dim];
        let mut members: Vec<(f32, usize)> = (0..n)
            .filter(|&i| km.labels[i] == c)
            .map(|i| (row(i).iter().zip(centre).map(|(a, b)| (a - b) * (a - b)).sum(), i))
            .collect();
        members.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut by_category: HashMap<&str, usize> = HashMap::new();
        for &(_, i) in &members {
            *by_category.entry(top_category(d, i)).or_default() += 1;
        }
        let mut cats: Vec<(&str, usize)> = by_category.into_iter().collect();
        cats.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        clusters_json.push(serde_json::json!({
            "cluster": format!("c{r}"), "size": sizes[c],
            "titles": members.iter().take(3).map(|&(_, i)| d.products[i].title.clone()).collect::<Vec<_>>(),
            "top_categories": cats.iter().take(3).map(|(c, m)| serde_json::json!([c, m])).collect::<Vec<_>>(),
        }));
    }
    // t-SNE of a sample
    let mut rng = Rng::new(o.seed ^ 0x75e);
    let mut sample: Vec<usize> = (0..n).collect();
    rng.shuffle(&mut sample);
    sample.truncate(o.map_items.min(n));
    sample.sort_unstable();
    let data: Vec<f32> = sample.iter().flat_map(|&i| row(i).to_vec()).collect();
    let config =
        TsneConfig::builder().perplexity(30f32.min(((sample.len() - 1) / 3) as f32).max(1.0)).seed(o.seed).build()?;
    let pb = if o.quiet { indicatif::ProgressBar::hidden() } else { progress(config.epochs as u64, false, "t-SNE") };
    let map = Tsne::fit(&config, &data, dim, |_| pb.inc(1))?;
    pb.finish_and_clear();
    let xy = |j: usize| (map.points[j][0] as f64, map.points[j][1] as f64);
    // by cluster
    pictures.extend(
        ScatterChart {
            title: format!("{}: t-SNE of {} items by k-means cluster", o.label, sample.len()),
            groups: (0..k).map(|r| format!("c{r}")).collect(),
            points: sample.iter().enumerate().map(|(j, &i)| (xy(j).0, xy(j).1, rank[&km.labels[i]])).collect(),
        }
        .write(&dir.join("tsne-clusters"))?,
    );
    // by category at the first level of the path with five or more values in the sample
    // (Amazon's top level only repeats the shop); the 9 most frequent, then "other"
    let level = (0..4)
        .find(|&l| {
            let distinct: std::collections::HashSet<&str> = sample.iter().map(|&i| category_at(d, i, l)).collect();
            distinct.len() >= 5
        })
        .unwrap_or(0);
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for &i in &sample {
        *counts.entry(category_at(d, i, level)).or_default() += 1;
    }
    let mut cats: Vec<(&str, usize)> = counts.into_iter().collect();
    cats.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let named: Vec<&str> = cats.iter().take(9).map(|c| c.0).collect();
    let mut groups: Vec<String> = named.iter().map(|s| s.to_string()).collect();
    if cats.len() > named.len() {
        groups.push("other".into());
    }
    let group_of = |i: usize| named.iter().position(|c| *c == category_at(d, i, level)).unwrap_or(named.len());
    pictures.extend(
        ScatterChart {
            title: format!("{}: t-SNE of {} items by category (level {})", o.label, sample.len(), level + 1),
            groups,
            points: sample.iter().enumerate().map(|(j, &i)| (xy(j).0, xy(j).1, group_of(i))).collect(),
        }
        .write(&dir.join("tsne-categories"))?,
    );
    if d.sites.len() > 1 {
        pictures.extend(
            ScatterChart {
                title: format!("{}: t-SNE of {} items by shop", o.label, sample.len()),
                groups: d.sites.iter().map(|s| s.key.clone()).collect(),
                points: sample
                    .iter()
                    .enumerate()
                    .map(|(j, &i)| (xy(j).0, xy(j).1, d.site_of(i as u32) as usize))
                    .collect(),
            }
            .write(&dir.join("tsne-shops"))?,
        );
    }
    let summary = serde_json::json!({
        "clusters": clusters_json, "k": k, "inertia": km.inertia, "map_items": sample.len(),
        "tsne_kl_divergence": map.kl_divergence,
    });
    Ok((pictures, summary))
}

/// The item's top-level category, or `(none)`.
pub fn top_category(d: &Dataset, i: usize) -> &str {
    category_at(d, i, 0)
}

/// The item's category at `level` of its path (0 = top), or `(none)`.
fn category_at(d: &Dataset, i: usize, level: usize) -> &str {
    d.products[i].category.get(level).map(|s| s.as_str()).unwrap_or("(none)")
}
