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
    adjusted_rand_index, n_clusters, noise_fraction, normalized_mutual_info, purity, silhouette, Dbscan, DbscanConfig,
    Hdbscan, HdbscanConfig, KMeans, KMeansConfig, Metric, Pca, Tsne, TsneConfig, Umap, UmapConfig,
};
use warmstart_viz::{BarChart, ScatterChart};

use crate::montage::{purity_of, write_montage, MontageRow};
use crate::{progress, Cli};

/// `warmstart analyze ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum AnalyzeCommand {
    /// Cluster Fashion-MNIST test images as the origin experiment did (DBSCAN, HDBSCAN), then
    /// search reductions and parameters for the best NMI with under 20% noise.
    FashionMnist(FashionMnistArgs),
    /// Cluster a stored embedding set with one algorithm; scores against product categories.
    Clusters(ClustersArgs),
}

/// Arguments of `warmstart analyze fashion-mnist`.
#[derive(Debug, Clone, Args)]
pub struct FashionMnistArgs {
    /// Directory with `t10k-images-idx3-ubyte[.gz]` and `t10k-labels-idx1-ubyte[.gz]`
    /// (Debian's dataset-fashion-mnist puts them in /usr/share/datasets/fashion-mnist).
    #[arg(long, default_value = warmstart_ingest::idx::DEBIAN_FASHION_MNIST)]
    pub dir: PathBuf,
    /// The first N test images.
    #[arg(long, default_value_t = 1000)]
    pub limit: usize,
    /// Image features, comma-separated: pixels, hog (histograms of oriented gradients),
    /// pixels+hog, texture, or a trained image encoder's name (e.g. fashion-dual); encoders
    /// that are not installed are skipped with a note.
    #[arg(long, default_value = "pixels,hog,pixels+hog,texture,fashion-dual")]
    pub features: String,
    /// Also write each reduction's vectors and our labels for `scripts/check_clusters.sh`.
    #[arg(long)]
    pub export: Option<PathBuf>,
    /// t-SNE perplexity of the 2-D space (50 gave the best NMI of 15, 30, 50, 80, 120 on the
    /// first 1,000 images).
    #[arg(long, default_value_t = 50.0)]
    pub perplexity: f32,
    /// Neighbours of the UMAP-style space.
    #[arg(long, default_value_t = 30)]
    pub umap_neighbors: usize,
    /// Dimensions of the UMAP-style space.
    #[arg(long, default_value_t = 2)]
    pub umap_components: usize,
    /// Seed (t-SNE layout, PCA, k-means).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Where run directories are written.
    #[arg(long, default_value = "runs")]
    pub runs_dir: PathBuf,
}

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

/// Runs `warmstart analyze ...`.
pub fn run(cli: &Cli, c: &AnalyzeCommand) -> anyhow::Result<()> {
    match c {
        AnalyzeCommand::FashionMnist(a) => fashion_mnist(cli, a),
        AnalyzeCommand::Clusters(a) => clusters(cli, a),
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

/// HOG cell size (pixels) and orientation bins for Fashion-MNIST.
const HOG_CELL: usize = 4;
const HOG_BINS: usize = 9;

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

/// Greyscale 28 × 28 images as RGB photos on a white background (inverted: Fashion-MNIST draws
/// light garments on black), upscaled for encoders trained on catalog photos.
fn as_photo(pixels: &[u8], rows: usize, cols: usize, scale: u32) -> image::DynamicImage {
    let img = image::GrayImage::from_fn(cols as u32, rows as u32, |x, y| {
        image::Luma([255 - pixels[y as usize * cols + x as usize]])
    });
    let rgb = image::DynamicImage::ImageLuma8(img).to_rgb8();
    image::DynamicImage::ImageRgb8(image::imageops::resize(
        &rgb,
        cols as u32 * scale,
        rows as u32 * scale,
        image::imageops::FilterType::Triangle,
    ))
}

fn fashion_mnist(cli: &Cli, a: &FashionMnistArgs) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let (images, classes) = warmstart_ingest::idx::fashion_mnist_test(&a.dir, Some(a.limit))?;
    let n = images.len();
    anyhow::ensure!(n >= 100, "{} images in {}: at least 100 are needed", n, a.dir.display());
    let truth: Vec<i32> = classes.iter().map(|c| *c as i32).collect();
    let (rows, cols) = (images.rows, images.cols);
    let mut notes = Vec::new();
    // feature sets
    let mut sets: Vec<(String, usize, Vec<f32>)> = Vec::new();
    for f in a.features.split(',').map(str::trim).filter(|f| !f.is_empty()) {
        match f {
            "pixels" => {
                sets.push(("pixels".into(), rows * cols, images.pixels.iter().map(|p| *p as f32 / 255.0).collect()))
            }
            // shape: HOG of 4-pixel cells; with pixels: both blocks L2-normalised, side by side
            "hog" | "pixels+hog" => {
                let with_pixels = f == "pixels+hog";
                let mut v = Vec::new();
                for i in 0..n {
                    let gray: Vec<f32> = images.image(i).iter().map(|p| *p as f32 / 255.0).collect();
                    if with_pixels {
                        let norm = gray.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
                        v.extend(gray.iter().map(|x| x / norm));
                    }
                    v.extend(warmstart_embed::hog::hog(&gray, rows, cols, HOG_CELL, HOG_BINS));
                }
                sets.push((f.to_string(), v.len() / n, v));
            }
            name => {
                let home = warmstart_store::home_dir();
                let model = if name == "texture" {
                    warmstart_embed::LoadedModel::load(&home, name)
                } else {
                    let dir = home.join("models").join(name);
                    if !dir.join("config.json").is_file() {
                        notes.push(format!("{name}: not installed in {}, skipped", dir.display()));
                        continue;
                    }
                    warmstart_embed::LoadedModel::load_dir(&dir, name, &home)
                };
                let model = model?;
                let encoder = model.image().ok_or_else(|| anyhow::anyhow!("{name} has no image tower"))?;
                let photos: Vec<image::DynamicImage> =
                    (0..n).map(|i| as_photo(images.image(i), rows, cols, 2)).collect();
                let mut v = Vec::with_capacity(n * encoder.dim());
                for chunk in photos.chunks(64) {
                    v.extend(encoder.encode_images(chunk)?);
                }
                sets.push((name.to_string(), encoder.dim(), v));
            }
        }
    }
    anyhow::ensure!(!sets.is_empty(), "no feature set to analyse (--features {})", a.features);
    let quiet = cli.json;
    let mut results: Vec<SettingResult> = Vec::new();
    let mut spaces: Vec<Space> = Vec::new();
    for (name, dim, data) in &sets {
        spaces.push(Space { features: name.clone(), reduction: "none".into(), dim: *dim, data: data.clone() });
        if *dim > 50 {
            spaces.push(Space {
                features: name.clone(),
                reduction: "pca:50".into(),
                dim: 50,
                data: pca(data, *dim, 50, a.seed)?,
            });
        }
        spaces.push(Space {
            features: name.clone(),
            reduction: "tsne".into(),
            dim: 2,
            data: tsne_of(data, *dim, a.seed, quiet, a.perplexity)?,
        });
        spaces.push(Space {
            features: name.clone(),
            reduction: format!("umap:{}", a.umap_components),
            dim: a.umap_components,
            data: umap_of(data, *dim, a.seed, quiet, a.umap_neighbors, a.umap_components)?,
        });
    }
    let eu = "euclidean";
    for s in &spaces {
        let grid: Vec<(&'static str, Algo)> = match s.reduction.as_str() {
            // the origin experiment's settings: library defaults on the raw vectors
            "none" => vec![
                ("seed-like", Algo::Dbscan { eps: 0.5, min_samples: 5, metric: eu }),
                (
                    "seed-like",
                    Algo::Hdbscan {
                        min_cluster_size: 5,
                        min_samples: None,
                        cluster_selection_epsilon: 0.0,
                        metric: eu,
                    },
                ),
            ],
            "pca:50" => vec![
                ("tuned", Algo::Kmeans { k: 10 }),
                (
                    "tuned",
                    Algo::Hdbscan {
                        min_cluster_size: 10,
                        min_samples: Some(5),
                        cluster_selection_epsilon: 0.0,
                        metric: eu,
                    },
                ),
            ],
            reduction => {
                // radii in map units: t-SNE maps span about ±40 here, UMAP ones about ±10
                let (selection, radii) = if reduction == "tsne" {
                    ([2.0, 4.0], [1.5, 2.0, 2.5, 3.0])
                } else {
                    ([0.25, 0.5], [0.2, 0.3, 0.5, 0.8])
                };
                let mut g = vec![("tuned", Algo::Kmeans { k: 10 })];
                for mcs in [10, 20, 40] {
                    for ms in [None, Some(5)] {
                        g.push((
                            "tuned",
                            Algo::Hdbscan {
                                min_cluster_size: mcs,
                                min_samples: ms,
                                cluster_selection_epsilon: 0.0,
                                metric: eu,
                            },
                        ));
                    }
                }
                for eps in selection {
                    g.push((
                        "tuned",
                        Algo::Hdbscan {
                            min_cluster_size: 20,
                            min_samples: Some(5),
                            cluster_selection_epsilon: eps,
                            metric: eu,
                        },
                    ));
                }
                for eps in radii {
                    for min_samples in [10, 20] {
                        g.push(("tuned", Algo::Dbscan { eps, min_samples, metric: eu }));
                    }
                }
                g
            }
        };
        for (stage, algo) in grid {
            results.push(score(stage, s, &algo, &truth, a.seed)?);
        }
    }
    let best = results
        .iter()
        .enumerate()
        .filter(|(_, r)| r.noise_fraction < 0.2 && !matches!(r.algo, Algo::Kmeans { .. }))
        .max_by(|x, y| x.1.nmi.total_cmp(&y.1.nmi))
        .map(|(i, _)| i);
    // pictures and report
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let run_dir = a.runs_dir.join(format!("{stamp}-analyze-fashion-mnist"));
    std::fs::create_dir_all(&run_dir)?;
    let class_names: Vec<String> = warmstart_ingest::idx::FASHION_MNIST_CLASSES.iter().map(|s| s.to_string()).collect();
    let mut pictures = Vec::new();
    if let Some(b) = best {
        let r = &results[b];
        let map_space = spaces.iter().find(|s| s.features == r.features && s.reduction == "tsne");
        if let Some(m) = map_space {
            let xy = |i: usize| (m.data[2 * i] as f64, m.data[2 * i + 1] as f64);
            pictures.extend(
                ScatterChart {
                    title: format!("Fashion-MNIST ({n}), {} t-SNE, by class", r.features),
                    groups: class_names.clone(),
                    points: (0..n).map(|i| (xy(i).0, xy(i).1, truth[i] as usize)).collect(),
                }
                .write(&run_dir.join("tsne-classes"))?,
            );
            let k = r.clusters;
            let mut groups: Vec<String> = (0..k).map(|c| format!("c{c}")).collect();
            groups.push("noise".into());
            pictures.extend(
                ScatterChart {
                    title: format!("best setting: {} on {} {}", r.algo.label(), r.features, r.reduction),
                    groups,
                    points: (0..n)
                        .map(|i| (xy(i).0, xy(i).1, if r.labels[i] < 0 { k } else { r.labels[i] as usize }))
                        .collect(),
                }
                .write(&run_dir.join("tsne-best"))?,
            );
        }
        pictures.extend(cluster_bars(&run_dir, &r.labels, &format!("best setting: {}", r.algo.label()))?);
        let montage = run_dir.join("montage-best.png");
        montage_digits(&montage, &images, &r.labels, &truth)?;
        pictures.push(montage);
    }
    let html = report_html("Fashion-MNIST clustering", &format!(
        "The first {n} test images of Fashion-MNIST ({}), features: {}. Seed-like settings are the library defaults on the raw \
         vectors, as the origin experiment used them; tuned settings reduce first (PCA to 50, or a 2-D t-SNE or UMAP-style layout of that) and search \
         parameters. NMI and ARI against the 10 classes, noise counted as its own label. The best setting maximises NMI with under \
         20% noise. {}",
        a.dir.display(),
        sets.iter().map(|s| s.0.as_str()).collect::<Vec<_>>().join(", "),
        notes.join("; ")
    ), &results, best, &pictures, &run_dir, "");
    std::fs::write(run_dir.join("report.html"), html)?;
    if let Some(dir) = &a.export {
        export(dir, &spaces, &results)?;
    }
    let summary = serde_json::json!({
        "images": n, "features": sets.iter().map(|s| &s.0).collect::<Vec<_>>(), "notes": notes,
        "settings": results, "best": best.map(|b| &results[b]), "run_dir": run_dir,
        "seconds": started.elapsed().as_secs_f64(),
    });
    std::fs::write(run_dir.join("results.json"), serde_json::to_string_pretty(&summary)?)?;
    if cli.json {
        println!("{summary}");
    } else {
        print!("{}", table(&results, best));
        for note in &notes {
            println!("note: {note}");
        }
        println!("report: {}", run_dir.join("report.html").display());
    }
    Ok(())
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

/// One row of up to 16 digits per cluster (evenly spaced members; noise last).
fn montage_digits(
    path: &Path,
    images: &warmstart_ingest::idx::IdxImages,
    labels: &[i32],
    truth: &[i32],
) -> anyhow::Result<()> {
    let k = n_clusters(labels);
    let per_row = 16usize;
    let mut rows = Vec::new();
    for want in (0..k as i32).chain([-1]) {
        let members: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == want).collect();
        if members.is_empty() {
            continue;
        }
        let step = (members.len() / per_row).max(1);
        let tiles = members
            .iter()
            .step_by(step)
            .take(per_row)
            .map(|&i| as_photo(images.image(i), images.rows, images.cols, 1).to_rgb8())
            .collect();
        rows.push(MontageRow { purity: (want >= 0).then(|| purity_of(&members, truth)), tiles });
    }
    write_montage(path, &rows, 2 * images.cols as u32, 2 * images.rows as u32)
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

/// Per space: `vectors.npy`, `config.json` and `labels_<i>.npy` of its DBSCAN/HDBSCAN runs.
fn export(dir: &Path, spaces: &[Space], results: &[SettingResult]) -> anyhow::Result<()> {
    for s in spaces {
        let sub = dir.join(format!("{}-{}", s.features.replace(['/', ':'], "_"), s.reduction.replace(':', "")));
        let runs: Vec<&SettingResult> = results
            .iter()
            .filter(|r| {
                r.features == s.features && r.reduction == s.reduction && !matches!(r.algo, Algo::Kmeans { .. })
            })
            .collect();
        if runs.is_empty() {
            continue;
        }
        std::fs::create_dir_all(&sub)?;
        let n = s.data.len() / s.dim;
        crate::npy::write(&sub.join("vectors.npy"), "<f4", &[n, s.dim], &crate::npy::f32_bytes(&s.data))?;
        let mut config = Vec::new();
        for (i, r) in runs.iter().enumerate() {
            config.push(match &r.algo {
                Algo::Dbscan { eps, min_samples, metric } => {
                    serde_json::json!({"algo": "dbscan", "eps": eps, "min_samples": min_samples, "metric": metric})
                }
                Algo::Hdbscan { min_cluster_size, min_samples, cluster_selection_epsilon, metric } => {
                    serde_json::json!({
                    "algo": "hdbscan", "min_cluster_size": min_cluster_size, "min_samples": min_samples,
                    "cluster_selection_epsilon": cluster_selection_epsilon, "metric": metric})
                }
                Algo::Kmeans { .. } => unreachable!("filtered above"),
            });
            crate::npy::write(
                &sub.join(format!("labels_{i}.npy")),
                "<i8",
                &[n],
                &crate::npy::i64_bytes(r.labels.iter().map(|l| *l as i64)),
            )?;
        }
        std::fs::write(sub.join("config.json"), serde_json::to_string_pretty(&serde_json::json!({ "runs": config }))?)?;
    }
    Ok(())
}

fn clusters(cli: &Cli, a: &ClustersArgs) -> anyhow::Result<()> {
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
            "purity": purity_of(members, &truth),
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
