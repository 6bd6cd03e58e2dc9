//! `warmstart analyze fashion-mnist`: the origin experiment on Fashion-MNIST test images, then
//! a search of reductions and parameters.

use super::*;

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

/// HOG cell size (pixels) and orientation bins for Fashion-MNIST.
const HOG_CELL: usize = 4;
const HOG_BINS: usize = 9;

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

pub(super) fn run(cli: &Cli, a: &FashionMnistArgs) -> anyhow::Result<()> {
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
        rows.push(MontageRow { purity: (want >= 0).then(|| cluster_purity(&members, truth)), tiles });
    }
    Ok(write_montage(path, &rows, 2 * images.cols as u32, 2 * images.rows as u32)?)
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
