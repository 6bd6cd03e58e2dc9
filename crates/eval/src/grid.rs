//! Small hyper-parameter grids, searched on the validation cases.

use serde::Serialize;
use warmstart_core::Dataset;
use warmstart_models::{
    AlsConfig, BprConfig, BrandKnnConfig, ContentConfig, Fit, ItemKnnConfig, PopularityConfig, UserKnnConfig,
};

use crate::runner::{fit_and_evaluate, EvalConfig};
use crate::{Error, Result, Task};

/// One grid point: its settings and the model built from them.
pub struct GridPoint {
    /// `name=value` settings.
    pub params: String,
    /// The model's validated hyper-parameters.
    pub model: Box<dyn Fit>,
}

/// The grid of a model name.
pub fn grid(name: &str, threads: usize, seed: u64) -> Result<Vec<GridPoint>> {
    let mut out: Vec<GridPoint> = Vec::new();
    match name {
        "pop" => {
            out.push(GridPoint { params: "window=all".into(), model: Box::new(PopularityConfig::builder().build()?) });
        }
        "itemknn" => {
            for n in [20, 100, 400] {
                for s in [10.0f32, 50.0, 200.0] {
                    let c = ItemKnnConfig::builder().neighbours(n).shrink(s).build()?;
                    out.push(GridPoint { params: format!("neighbours={n} shrink={s}"), model: Box::new(c) });
                }
            }
        }
        "brandknn" => {
            for n in [100, 400, 1600] {
                for s in [10.0f32, 50.0, 200.0, 800.0] {
                    let c = BrandKnnConfig::builder().neighbours(n).shrink(s).build()?;
                    out.push(GridPoint { params: format!("neighbours={n} shrink={s}"), model: Box::new(c) });
                }
            }
        }
        "rp3beta" => {
            for alpha in [0.1f32, 0.25, 0.5, 1.0] {
                for beta in [0.0f32, 0.1, 0.2, 0.4] {
                    let c = ItemKnnConfig::builder().rp3beta(alpha, beta).build()?;
                    out.push(GridPoint { params: format!("alpha={alpha} beta={beta}"), model: Box::new(c) });
                }
            }
        }
        "userknn" => {
            for k in [100, 200, 400, 800] {
                for shrink in [0.0f32, 10.0] {
                    for exponent in [0.5f32, 1.0, 2.0] {
                        let c = UserKnnConfig::builder().neighbours(k).shrink(shrink).exponent(exponent).build()?;
                        out.push(GridPoint {
                            params: format!("neighbours={k} shrink={shrink} exponent={exponent}"),
                            model: Box::new(c),
                        });
                    }
                }
            }
        }
        "ease" => {
            for lambda in [100f32, 500.0, 2000.0, 8000.0] {
                for items in [1500u32, 3000] {
                    let c = ItemKnnConfig::builder().ease(lambda, items).build()?;
                    out.push(GridPoint { params: format!("lambda={lambda} items={items}"), model: Box::new(c) });
                }
            }
        }
        "als" => {
            for f in [32, 64] {
                for reg in [0.01f32, 1.0, 10.0] {
                    for alpha in [1.0f32, 10.0] {
                        let c = AlsConfig::builder()
                            .factors(f)
                            .regularization(reg)
                            .alpha(alpha)
                            .threads(threads)
                            .seed(seed)
                            .build()?;
                        out.push(GridPoint {
                            params: format!("factors={f} regularization={reg} alpha={alpha}"),
                            model: Box::new(c),
                        });
                    }
                }
            }
        }
        "bpr" => {
            for lr in [0.01f32, 0.05] {
                for reg in [0.001f32, 0.01] {
                    let c = BprConfig::builder().learning_rate(lr).regularization(reg).seed(seed).build()?;
                    out.push(GridPoint {
                        params: format!("learning_rate={lr} regularization={reg}"),
                        model: Box::new(c),
                    });
                }
            }
        }
        "content" | "content-pop" | "content-map" | "content-map-pop" => {
            let mapped = name.contains("map");
            let weights: &[f32] = if name.ends_with("pop") { &[0.2, 0.4, 0.6, 0.8] } else { &[0.0] };
            let ridges: &[f32] = if mapped { &[0.001, 0.01, 0.1] } else { &[0.01] };
            for &w in weights {
                for &r in ridges {
                    let c = ContentConfig::builder().mapped(mapped).pop_weight(w).ridge(r).build()?;
                    out.push(GridPoint { params: format!("pop_weight={w} ridge={r}"), model: Box::new(c) });
                }
            }
        }
        other => return Err(Error::Model(warmstart_models::Error::UnknownModel(other.into()))),
    }
    Ok(out)
}

/// A grid point's validation score.
#[derive(Debug, Clone, Serialize)]
pub struct GridResult {
    /// Settings.
    pub params: String,
    /// Validation value of the selection metric.
    pub score: f64,
    /// Seconds to fit.
    pub fit_seconds: f64,
}

/// Fits every grid point on the task and scores it on the validation cases by `metric`;
/// results sorted best first.
pub fn search(
    name: &str,
    d: &Dataset,
    task: &Task,
    cfg: &EvalConfig,
    metric: &str,
    threads: usize,
    on_point: &dyn Fn(&GridResult),
) -> Result<Vec<GridResult>> {
    if task.valid.is_empty() {
        return Err(Error::Config(format!("task {} has no validation cases to tune on", task.name)));
    }
    let mut out = Vec::new();
    for p in grid(name, threads, cfg.seed)? {
        let r = fit_and_evaluate(p.model.as_ref(), d, task, cfg, true)?;
        let score = *r.metrics.get(metric).ok_or_else(|| Error::Config(format!("unknown metric `{metric}`")))?;
        let g = GridResult { params: p.params, score, fit_seconds: r.fit_seconds };
        on_point(&g);
        out.push(g);
    }
    out.sort_by(|a, b| b.score.total_cmp(&a.score));
    Ok(out)
}
