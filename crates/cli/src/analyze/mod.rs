//! `warmstart analyze`: clustering of embedding sets, scored against labels, with t-SNE maps,
//! cluster-size bars, image montages and an HTML report.
//!
//! - `analyze fashion-mnist`: reproduces the project's origin experiment (DBSCAN and HDBSCAN
//!   on Fashion-MNIST images, seed-like settings) and then searches reductions and parameters
//!   for the best NMI with under 20% noise.
//! - `analyze clusters`: one algorithm on a stored embedding set (labels: product categories).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde::Serialize;
use warmstart_analysis::{
    adjusted_rand_index, cluster_purity, n_clusters, noise_fraction, normalized_mutual_info, purity, silhouette,
    Dbscan, DbscanConfig, Hdbscan, HdbscanConfig, KMeans, KMeansConfig, Metric, Pca, Tsne, TsneConfig, Umap,
    UmapConfig,
};
use warmstart_viz::{write_montage, BarChart, MontageRow, ScatterChart};

use crate::{progress, Cli};

mod clusters;
mod fashion_mnist;

pub use clusters::ClustersArgs;
pub use fashion_mnist::FashionMnistArgs;

/// `warmstart analyze ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum AnalyzeCommand {
    /// Cluster Fashion-MNIST test images as the origin experiment did (DBSCAN, HDBSCAN), then
    /// search reductions and parameters for the best NMI with under 20% noise.
    FashionMnist(FashionMnistArgs),
    /// Cluster a stored embedding set with one algorithm; scores against product categories.
    Clusters(ClustersArgs),
}

/// Runs `warmstart analyze ...`.
pub fn run(cli: &Cli, c: &AnalyzeCommand) -> anyhow::Result<()> {
    match c {
        AnalyzeCommand::FashionMnist(a) => fashion_mnist::run(cli, a),
        AnalyzeCommand::Clusters(a) => clusters::run(cli, a),
    }
}

/// A clustering algorithm with its parameters.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "algorithm", rename_all = "lowercase")]
pub enum Algo {
    /// DBSCAN.
    Dbscan {
        /// Radius.
        eps: f32,
        /// Core threshold (the point counts).
        min_samples: usize,
        /// Distance.
        metric: &'static str,
    },
    /// HDBSCAN.
    Hdbscan {
        /// Smallest cluster.
        min_cluster_size: usize,
        /// Core-distance neighbour (None = min_cluster_size).
        min_samples: Option<usize>,
        /// Cluster selection epsilon.
        cluster_selection_epsilon: f32,
        /// Distance.
        metric: &'static str,
    },
    /// k-means++.
    Kmeans {
        /// Clusters.
        k: usize,
    },
}

fn metric_of(name: &str) -> anyhow::Result<(Metric, &'static str)> {
    match name {
        "euclidean" => Ok((Metric::Euclidean, "euclidean")),
        "cosine" => Ok((Metric::Cosine, "cosine")),
        m => anyhow::bail!("--metric {m}: expected euclidean or cosine"),
    }
}

impl Algo {
    fn fit(&self, data: &[f32], dim: usize, seed: u64) -> anyhow::Result<Vec<i32>> {
        Ok(match self {
            Algo::Dbscan { eps, min_samples, metric } => {
                let c =
                    DbscanConfig::builder().eps(*eps).min_samples(*min_samples).metric(metric_of(metric)?.0).build()?;
                Dbscan::fit(&c, data, dim)?.labels
            }
            Algo::Hdbscan { min_cluster_size, min_samples, cluster_selection_epsilon, metric } => {
                let c = HdbscanConfig::builder()
                    .min_cluster_size(*min_cluster_size)
                    .min_samples(*min_samples)
                    .cluster_selection_epsilon(*cluster_selection_epsilon)
                    .metric(metric_of(metric)?.0)
                    .build()?;
                Hdbscan::fit(&c, data, dim)?.labels
            }
            Algo::Kmeans { k } => {
                let c = KMeansConfig::builder().k(*k).seed(seed).build()?;
                KMeans::fit(&c, data, dim)?.labels.into_iter().map(|l| l as i32).collect()
            }
        })
    }

    fn metric(&self) -> Metric {
        match self {
            Algo::Dbscan { metric, .. } | Algo::Hdbscan { metric, .. } if *metric == "cosine" => Metric::Cosine,
            _ => Metric::Euclidean,
        }
    }

    fn label(&self) -> String {
        match self {
            Algo::Dbscan { eps, min_samples, metric } => format!("DBSCAN eps {eps}, min_samples {min_samples}, {metric}"),
            Algo::Hdbscan { min_cluster_size, min_samples, cluster_selection_epsilon, metric } => format!(
                "HDBSCAN min_cluster_size {min_cluster_size}, min_samples {}, epsilon {cluster_selection_epsilon}, {metric}",
                min_samples.map(|m| m.to_string()).unwrap_or_else(|| "=size".into())
            ),
            Algo::Kmeans { k } => format!("k-means k {k}"),
        }
    }
}

/// One vector set to cluster: name, reduction, the matrix.
struct Space {
    features: String,
    reduction: String,
    dim: usize,
    data: Vec<f32>,
}

/// Scores of one setting.
#[derive(Debug, Clone, Serialize)]
pub struct SettingResult {
    /// Which group of the report (seed-like or tuned).
    pub stage: &'static str,
    /// Feature set.
    pub features: String,
    /// Reduction before clustering.
    pub reduction: String,
    /// Algorithm and parameters.
    #[serde(flatten)]
    pub algo: Algo,
    /// Clusters found (noise excluded).
    pub clusters: usize,
    /// Share of points labelled noise.
    pub noise_fraction: f64,
    /// Normalised mutual information with the labels (noise as its own label).
    pub nmi: f64,
    /// Adjusted Rand index with the labels.
    pub ari: f64,
    /// Purity (noise as one group).
    pub purity: f64,
    /// Mean silhouette of the non-noise points (None with fewer than two clusters).
    pub silhouette: Option<f64>,
    #[serde(skip)]
    labels: Vec<i32>,
}

fn score(stage: &'static str, space: &Space, algo: &Algo, truth: &[i32], seed: u64) -> anyhow::Result<SettingResult> {
    let labels = algo.fit(&space.data, space.dim, seed)?;
    Ok(SettingResult {
        stage,
        features: space.features.clone(),
        reduction: space.reduction.clone(),
        algo: algo.clone(),
        clusters: n_clusters(&labels),
        noise_fraction: noise_fraction(&labels),
        nmi: normalized_mutual_info(&labels, truth)?,
        ari: adjusted_rand_index(&labels, truth)?,
        purity: purity(&labels, truth)?,
        silhouette: silhouette(&space.data, space.dim, &labels, algo.metric())?,
        labels,
    })
}

/// PCA to `k` components.
fn pca(data: &[f32], dim: usize, k: usize, seed: u64) -> anyhow::Result<Vec<f32>> {
    let n = data.len() / dim;
    let k = k.min(dim).min(n);
    let p = Pca::fit(data, dim, k, 8, seed)?;
    Ok(p.transform(data)?)
}

/// 2-D t-SNE of the 50-component PCA (the usual pipeline).
fn tsne_of(data: &[f32], dim: usize, seed: u64, quiet: bool, perplexity: f32) -> anyhow::Result<Vec<f32>> {
    let n = data.len() / dim;
    let reduced = if dim > 50 { pca(data, dim, 50, seed)? } else { data.to_vec() };
    let rdim = reduced.len() / n;
    let config = TsneConfig::builder().perplexity(perplexity.min(((n - 1) / 3) as f32).max(1.0)).seed(seed).build()?;
    let pb = if quiet { indicatif::ProgressBar::hidden() } else { progress(config.epochs as u64, false, "t-SNE") };
    let map = Tsne::fit(&config, &reduced, rdim, |_| pb.inc(1))?;
    pb.finish_and_clear();
    Ok(map.points.iter().flat_map(|p| [p[0], p[1]]).collect())
}

/// UMAP-style layout (`min_dist` 0, for clustering) of the 50-component PCA.
fn umap_of(
    data: &[f32],
    dim: usize,
    seed: u64,
    quiet: bool,
    neighbors: usize,
    components: usize,
) -> anyhow::Result<Vec<f32>> {
    let n = data.len() / dim;
    let reduced = if dim > 50 { pca(data, dim, 50, seed)? } else { data.to_vec() };
    let rdim = reduced.len() / n;
    let config = UmapConfig::builder()
        .n_neighbors(neighbors.min(n.saturating_sub(1)).max(2))
        .n_components(components)
        .min_dist(0.0)
        .seed(seed)
        .build()?;
    let pb = if quiet { indicatif::ProgressBar::hidden() } else { progress(config.epochs as u64, false, "UMAP") };
    let u = Umap::fit(&config, &reduced, rdim, |_| pb.inc(1))?;
    pb.finish_and_clear();
    Ok(u.embedding)
}

fn cluster_bars(dir: &Path, labels: &[i32], title: &str) -> anyhow::Result<Vec<PathBuf>> {
    let k = n_clusters(labels);
    let mut sizes = vec![0usize; k];
    let mut noise = 0;
    for &l in labels {
        if l < 0 {
            noise += 1;
        } else if (l as usize) < k {
            sizes[l as usize] += 1;
        }
    }
    let mut bars: Vec<(String, f64)> = sizes.iter().enumerate().map(|(c, s)| (format!("c{c}"), *s as f64)).collect();
    bars.push(("noise".into(), noise as f64));
    Ok(BarChart { title: format!("cluster sizes, {title}"), x_label: "cluster".into(), y_label: "items".into(), bars }
        .write(&dir.join("cluster-sizes"))?)
}

fn fmt_opt(x: Option<f64>) -> String {
    x.map(|v| format!("{v:.3}")).unwrap_or_else(|| "–".into())
}

fn table(results: &[SettingResult], best: Option<usize>) -> String {
    let mut t = format!(
        "{:<10} {:<13} {:<8} {:<70} {:>8} {:>7} {:>6} {:>6} {:>7} {:>6}\n",
        "stage", "features", "reduce", "algorithm", "clusters", "noise", "NMI", "ARI", "purity", "silh."
    );
    for (i, r) in results.iter().enumerate() {
        let _ = writeln!(
            t,
            "{:<10} {:<13} {:<8} {:<70} {:>8} {:>7.3} {:>6.3} {:>6.3} {:>7.3} {:>6}{}",
            r.stage,
            r.features,
            r.reduction,
            r.algo.label(),
            r.clusters,
            r.noise_fraction,
            r.nmi,
            r.ari,
            r.purity,
            fmt_opt(r.silhouette),
            if Some(i) == best { "  ← best" } else { "" }
        );
    }
    t
}

fn report_html(
    title: &str,
    intro: &str,
    results: &[SettingResult],
    best: Option<usize>,
    pictures: &[PathBuf],
    dir: &Path,
    extra: &str,
) -> String {
    let e = warmstart_viz::gallery::escape_html;
    let mut h = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title><style>body{{font-family:sans-serif;margin:24px}}\
         table{{border-collapse:collapse;font-size:13px}}td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right}}\
         td.l{{text-align:left}}tr.best{{background:#efe;font-weight:bold}}img{{max-width:100%;margin:8px 0}}</style></head>\
         <body><h1>{t}</h1><p>{i}</p><table><tr><th>stage</th><th>features</th><th>reduction</th><th>algorithm and parameters</th>\
         <th>clusters</th><th>noise</th><th>NMI</th><th>ARI</th><th>purity</th><th>silhouette</th></tr>",
        t = e(title),
        i = e(intro)
    );
    for (n, r) in results.iter().enumerate() {
        let _ = write!(
            h,
            "<tr{}><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td>{:.3}</td>\
             <td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{}</td></tr>",
            if Some(n) == best { " class=\"best\"" } else { "" },
            r.stage,
            e(&r.features),
            e(&r.reduction),
            e(&r.algo.label()),
            r.clusters,
            r.noise_fraction,
            r.nmi,
            r.ari,
            r.purity,
            fmt_opt(r.silhouette)
        );
    }
    h.push_str("</table>");
    h.push_str(extra);
    for p in pictures.iter().filter(|p| p.extension().is_some_and(|x| x == "png")) {
        let name = p.strip_prefix(dir).unwrap_or(p).display().to_string();
        let _ = write!(h, "<h3>{}</h3><img src=\"{}\">", e(&name), e(&name));
    }
    h.push_str("</body></html>\n");
    h
}
