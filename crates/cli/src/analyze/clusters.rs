//! `warmstart analyze clusters`: one algorithm on a stored embedding set, scored against
//! product categories.

use super::*;

/// Arguments of `warmstart analyze clusters`.
#[derive(Debug, Clone, Args)]
pub struct ClustersArgs {
    /// Stored embedding set (e.g. minilm, fashion-dual/image) or TEXT+IMAGE[:w].
    #[arg(long)]
    pub embeddings: String,
    /// Dataset group.
    #[arg(long, default_value = "fashion-products")]
    pub dataset: String,
    /// Algorithm: hdbscan, dbscan or kmeans.
    #[arg(long, default_value = "hdbscan")]
    pub algo: String,
    /// Reduction before clustering: none, pca:K, tsne (2-D t-SNE of the 50-component PCA) or
    /// umap[:D] (UMAP-style layout of that PCA, 30 neighbours, min_dist 0, D dimensions, 2 by default).
    #[arg(long, default_value = "none")]
    pub reduce: String,
    /// Distance: euclidean or cosine (dbscan, hdbscan).
    #[arg(long, default_value = "euclidean")]
    pub metric: String,
    /// HDBSCAN minimum cluster size.
    #[arg(long, default_value_t = 5)]
    pub min_cluster_size: usize,
    /// Minimum samples (DBSCAN core points; HDBSCAN core distance; default: min cluster size).
    #[arg(long)]
    pub min_samples: Option<usize>,
    /// DBSCAN neighbourhood radius.
    #[arg(long, default_value_t = 0.5)]
    pub eps: f32,
    /// HDBSCAN cluster selection epsilon.
    #[arg(long, default_value_t = 0.0)]
    pub epsilon: f32,
    /// k-means k.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Products analysed (a seeded sample of those with a vector).
    #[arg(long, default_value_t = 3000)]
    pub limit: usize,
    /// Seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Where run directories are written.
    #[arg(long, default_value = "runs")]
    pub runs_dir: PathBuf,
}

pub(super) fn run(cli: &Cli, a: &ClustersArgs) -> anyhow::Result<()> {
    let store = warmstart_store::Store::open(&cli.store_path())?;
    let d = store.load_dataset(Some(&a.dataset))?;
    let v = crate::vectors::load_vectors(&store, &a.dataset, &d, &a.embeddings.parse()?)?;
    let present: Vec<usize> = (0..d.n_items()).filter(|&i| v.row(i as u32).iter().any(|x| *x != 0.0)).collect();
    anyhow::ensure!(present.len() >= 10, "{} products with `{}` vectors: too few", present.len(), a.embeddings);
    let mut rng = warmstart_core::Rng::new(a.seed);
    let mut sample = present;
    rng.shuffle(&mut sample);
    sample.truncate(a.limit);
    sample.sort_unstable();
    let n = sample.len();
    let data: Vec<f32> = sample.iter().flat_map(|&i| v.row(i as u32).to_vec()).collect();
    // labels: top-level category
    let names: Vec<String> = sample.iter().map(|&i| crate::item_maps::top_category(&d, i).to_string()).collect();
    let mut vocab: Vec<String> = names.clone();
    vocab.sort();
    vocab.dedup();
    let truth: Vec<i32> = names.iter().map(|s| vocab.binary_search(s).map(|p| p as i32).unwrap_or(-1)).collect();
    let (space_data, space_dim) = match a.reduce.as_str() {
        "none" => (data.clone(), v.dim),
        "tsne" => (tsne_of(&data, v.dim, a.seed, cli.json, 30.0)?, 2),
        r if r == "umap" || r.starts_with("umap:") => {
            let k: usize = r
                .strip_prefix("umap:")
                .unwrap_or("2")
                .parse()
                .map_err(|_| anyhow::anyhow!("--reduce {r}: expected umap:D"))?;
            (umap_of(&data, v.dim, a.seed, cli.json, 30, k)?, k)
        }
        r if r.starts_with("pca:") => {
            let k: usize = r[4..].parse().map_err(|_| anyhow::anyhow!("--reduce {r}: expected pca:K"))?;
            let out = pca(&data, v.dim, k, a.seed)?;
            let dim = out.len() / n;
            (out, dim)
        }
        r => anyhow::bail!("--reduce {r}: expected none, pca:K, tsne or umap[:D]"),
    };
    let metric = metric_of(&a.metric)?.1;
    let algo = match a.algo.as_str() {
        "hdbscan" => Algo::Hdbscan {
            min_cluster_size: a.min_cluster_size,
            min_samples: a.min_samples,
            cluster_selection_epsilon: a.epsilon,
            metric,
        },
        "dbscan" => Algo::Dbscan { eps: a.eps, min_samples: a.min_samples.unwrap_or(5), metric },
        "kmeans" => Algo::Kmeans { k: a.k },
        x => anyhow::bail!("--algo {x}: expected hdbscan, dbscan or kmeans"),
    };
    let space = Space { features: a.embeddings.clone(), reduction: a.reduce.clone(), dim: space_dim, data: space_data };
    let r = score("run", &space, &algo, &truth, a.seed)?;
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let run_dir = a.runs_dir.join(format!("{stamp}-analyze-clusters-{}", a.embeddings.replace(['/', ':', '+'], "_")));
    std::fs::create_dir_all(&run_dir)?;
    let mut pictures = cluster_bars(&run_dir, &r.labels, &r.algo.label())?;
    let map = if space_dim == 2 { space.data.clone() } else { tsne_of(&data, v.dim, a.seed, cli.json, 30.0)? };
    let k = r.clusters;
    let shown = k.min(19);
    let mut groups: Vec<String> = (0..shown).map(|c| format!("c{c}")).collect();
    groups.push(if k > shown { "other clusters".into() } else { "noise".into() });
    if k > shown {
        groups.push("noise".into());
    }
    let group_of = |l: i32| -> usize {
        if l < 0 {
            groups.len() - 1
        } else if (l as usize) < shown {
            l as usize
        } else {
            shown
        }
    };
    pictures.extend(
        ScatterChart {
            title: format!("{} ({} products): {}", a.embeddings, n, r.algo.label()),
            groups: groups.clone(),
            points: (0..n).map(|i| (map[2 * i] as f64, map[2 * i + 1] as f64, group_of(r.labels[i]))).collect(),
        }
        .write(&run_dir.join("tsne-clusters"))?,
    );
    // per cluster (largest first, noise last): size, purity, categories, patterned share and
    // the members nearest the cluster's centre in the clustering space
    let mut order: Vec<(i32, Vec<usize>)> = (0..k as i32)
        .map(|c| (c, (0..n).filter(|&j| r.labels[j] == c).collect::<Vec<usize>>()))
        .filter(|(_, m)| !m.is_empty())
        .collect();
    order.sort_by_key(|(c, m)| (std::cmp::Reverse(m.len()), *c));
    let noise: Vec<usize> = (0..n).filter(|&j| r.labels[j] < 0).collect();
    if !noise.is_empty() {
        order.push((-1, noise));
    }
    let patterned: Vec<bool> = sample.iter().map(|&i| is_patterned(&d.products[i].title)).collect();
    let mut per_cluster = Vec::new();
    let mut shown_members: Vec<(usize, Vec<usize>)> = Vec::new();
    for (row, (c, members)) in order.iter().enumerate() {
        let mut counts: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
        for &j in members {
            *counts.entry(vocab[truth[j] as usize].as_str()).or_default() += 1;
        }
        let mut cats: Vec<(&str, usize)> = counts.into_iter().collect();
        cats.sort_by_key(|x| std::cmp::Reverse(x.1));
        let shown = if *c < 0 {
            let step = (members.len() / MONTAGE_NOISE).max(1);
            members.iter().copied().step_by(step).take(MONTAGE_NOISE).collect()
        } else {
            central(&space.data, space.dim, members, MONTAGE_PER_CLUSTER)
        };
        if row < MONTAGE_ROWS || *c < 0 {
            shown_members.push((row, shown.clone()));
        }
        per_cluster.push(serde_json::json!({
            "cluster": if *c < 0 { "noise".to_string() } else { format!("c{c}") }, "size": members.len(),
            "purity": cluster_purity(members, &truth),
            "patterned_share": members.iter().filter(|&&j| patterned[j]).count() as f64 / members.len() as f64,
            "categories": cats.iter().take(4).map(|(s, m)| serde_json::json!([s, m])).collect::<Vec<_>>(),
            "titles": shown.iter().take(5).map(|&j| d.products[sample[j]].title.clone()).collect::<Vec<_>>(),
        }));
    }
    // do patterned items end up as outliers? noise rate of patterned vs plain titles
    let noise_rate = |want: bool| {
        let of: Vec<usize> = (0..n).filter(|&j| patterned[j] == want).collect();
        (of.len(), of.iter().filter(|&&j| r.labels[j] < 0).count() as f64 / of.len().max(1) as f64)
    };
    let (n_patterned, noise_patterned) = noise_rate(true);
    let (n_plain, noise_plain) = noise_rate(false);
    let patterns = serde_json::json!({
        "patterned_items": n_patterned, "noise_rate_patterned": noise_patterned,
        "plain_items": n_plain, "noise_rate_plain": noise_plain,
    });
    // photo montage where the catalog has photos
    let wanted: Vec<(usize, String)> = shown_members
        .iter()
        .flat_map(|(_, m)| m.iter().copied())
        .filter_map(|j| d.products[sample[j]].image.clone().map(|r| (j, r)))
        .collect();
    let mut photos: std::collections::HashMap<usize, image::RgbImage> = std::collections::HashMap::new();
    if !wanted.is_empty() {
        warmstart_ingest::images::read_images(&wanted, |j, bytes| {
            if let Some(img) = bytes.ok().and_then(|b| image::load_from_memory(&b).ok()) {
                photos.insert(j, img.thumbnail(120, 160).to_rgb8());
            }
            anyhow::Ok(())
        })?;
    }
    if !photos.is_empty() {
        // the noise row wraps onto rows as wide as the clusters'
        let rows: Vec<MontageRow> = shown_members
            .iter()
            .flat_map(|(row, m)| {
                let purity = per_cluster[*row]["purity"].as_f64().filter(|_| order[*row].0 >= 0).map(|p| p as f32);
                let tiles: Vec<image::RgbImage> = m.iter().filter_map(|j| photos.get(j).cloned()).collect();
                tiles.chunks(MONTAGE_PER_CLUSTER).map(|t| MontageRow { purity, tiles: t.to_vec() }).collect::<Vec<_>>()
            })
            .collect();
        let path = run_dir.join("montage-clusters.png");
        write_montage(&path, &rows, 60, 80)?;
        pictures.push(path);
    }
    let mut cluster_table = format!(
        "<h2>Clusters</h2><p>Largest first, noise last; montage rows follow this order (first {MONTAGE_ROWS} clusters \
         and noise). Patterned: a pattern word in the title (print, check, stripe, floral, ...). Noise rate of \
         patterned items {:.1}% ({n_patterned}), of plain items {:.1}% ({n_plain}).</p><table><tr><th>row</th>\
         <th>cluster</th><th>size</th><th>purity</th><th>patterned</th><th>categories</th><th>central titles</th></tr>",
        100.0 * noise_patterned,
        100.0 * noise_plain
    );
    let e = warmstart_viz::gallery::escape_html;
    for (row, c) in per_cluster.iter().enumerate() {
        let cats: Vec<String> = c["categories"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|x| format!("{} {}", x[0].as_str().unwrap_or(""), x[1]))
            .collect();
        let titles: Vec<&str> = c["titles"].as_array().into_iter().flatten().filter_map(|t| t.as_str()).collect();
        let _ = write!(
            cluster_table,
            "<tr><td>{row}</td><td class=\"l\">{}</td><td>{}</td><td>{:.2}</td><td>{:.2}</td><td class=\"l\">{}</td>\
             <td class=\"l\">{}</td></tr>",
            e(c["cluster"].as_str().unwrap_or("")),
            c["size"],
            c["purity"].as_f64().unwrap_or(0.0),
            c["patterned_share"].as_f64().unwrap_or(0.0),
            e(&cats.join(", ")),
            e(&titles.join(" | "))
        );
    }
    cluster_table.push_str("</table>");
    let html = report_html(
        &format!("{} clusters", a.embeddings),
        &format!(
            "{n} products of {} (seeded sample), labels: top-level category; per cluster in results.json",
            a.dataset
        ),
        std::slice::from_ref(&r),
        Some(0),
        &pictures,
        &run_dir,
        &cluster_table,
    );
    std::fs::write(run_dir.join("report.html"), html)?;
    let summary = serde_json::json!({
        "result": r, "clusters": per_cluster, "patterns": patterns, "run_dir": run_dir, "products": n,
        "photos": photos.len(),
    });
    std::fs::write(run_dir.join("results.json"), serde_json::to_string_pretty(&summary)?)?;
    if cli.json {
        println!("{summary}");
    } else {
        print!("{}", table(std::slice::from_ref(&r), None));
        println!("report: {}", run_dir.join("report.html").display());
    }
    Ok(())
}

/// Montage rows for clusters (the largest ones) and tiles per cluster row and in the noise row.
const MONTAGE_ROWS: usize = 30;
const MONTAGE_PER_CLUSTER: usize = 12;
const MONTAGE_NOISE: usize = 24;

/// Up to `take` members nearest the members' mean (ties by position).
fn central(data: &[f32], dim: usize, members: &[usize], take: usize) -> Vec<usize> {
    let mut mean = vec![0f32; dim];
    for &j in members {
        for (m, x) in mean.iter_mut().zip(&data[j * dim..(j + 1) * dim]) {
            *m += x / members.len() as f32;
        }
    }
    let mut by_distance: Vec<(f32, usize)> = members
        .iter()
        .map(|&j| (data[j * dim..(j + 1) * dim].iter().zip(&mean).map(|(x, m)| (x - m) * (x - m)).sum(), j))
        .collect();
    by_distance.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    by_distance.into_iter().take(take).map(|x| x.1).collect()
}

/// Whether a product title names a pattern (print, check, stripe, floral, ...).
fn is_patterned(title: &str) -> bool {
    const WORDS: &[&str] = &[
        "print",
        "printed",
        "prints",
        "check",
        "checked",
        "checks",
        "checkered",
        "stripe",
        "striped",
        "stripes",
        "floral",
        "flower",
        "graphic",
        "polka",
        "dot",
        "dots",
        "camouflage",
        "camo",
        "paisley",
        "embroidered",
        "abstract",
        "geometric",
        "colourblock",
        "colourblocked",
        "colorblock",
        "typography",
        "pattern",
        "patterned",
        "animal",
        "leopard",
        "zebra",
        "tie-dye",
        "plaid",
        "tartan",
        "houndstooth",
        "ikat",
        "self-design",
    ];
    let lower = title.to_lowercase();
    lower.contains("self design")
        || lower.split(|ch: char| !(ch.is_alphanumeric() || ch == '-')).any(|w| WORDS.contains(&w))
}
