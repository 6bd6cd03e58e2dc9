//! An experiment report as pictures and a page: CTR per variant, CTR by position, and an HTML
//! file with the tables and charts inlined.

use std::path::{Path, PathBuf};

use warmstart_viz::{BarChart, Block, HtmlReport, LineChart, Series};

use crate::experiment::ExperimentReport;
use crate::{Error, Result};

fn pct(x: f64) -> String {
    format!("{:.2}%", 100.0 * x)
}

/// Writes an experiment's per-session counts as CSV (variant, impressions, clicks, carts,
/// purchases), for checks with other tools.
pub fn write_sessions_csv(store: &warmstart_store::Store, key: &str, path: &Path) -> Result<()> {
    use std::fmt::Write as _;
    let mut text = String::from("variant,impressions,clicks,carts,purchases\n");
    for s in store.experiment_sessions(key)? {
        let _ = writeln!(text, "{},{},{},{},{}", s.variant, s.impressions, s.clicks, s.carts, s.purchases);
    }
    std::fs::write(path, text).map_err(|e| Error::io(path, e))
}

/// Writes `ctr.svg/png`, `ctr_by_position.svg/png`, `report.html` and `report.json` under
/// `dir`; returns the files.
pub fn write_report(r: &ExperimentReport, dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let viz = |e: warmstart_viz::Error| Error::Artifact { path: dir.display().to_string(), reason: e.to_string() };
    let mut files = Vec::new();
    let json = dir.join("report.json");
    std::fs::write(&json, serde_json::to_string_pretty(r).unwrap_or_default()).map_err(|e| Error::io(&json, e))?;
    files.push(json);
    let mut blocks = Vec::new();
    blocks.push(Block::Paragraph(format!(
        "Allocation: {:?}. Control: {}. Winner (highest CTR with a significant lift over control, p < 0.05; else control): {}.",
        r.allocation, r.control, r.winner
    )));
    if let Some(s) = &r.sample_ratio {
        blocks.push(Block::Paragraph(format!(
            "Sample-ratio check: chi² = {:.2} on {} df, p = {:.3e} — {}.",
            s.chi2,
            s.df,
            s.p_value,
            if s.mismatch {
                "MISMATCH: sessions per variant do not fit the declared weights; assignment or logging is broken, do not trust the comparison"
            } else {
                "sessions fit the declared weights"
            }
        )));
    }
    let head = [
        "variant",
        "model",
        "weight",
        "sessions",
        "impressions",
        "clicks",
        "CTR",
        "CTR 95% CI",
        "lift vs control",
        "lift 95% CI",
        "p",
        "cart rate",
        "purchase rate",
    ];
    let rows = r
        .variants
        .iter()
        .map(|v| {
            let (l, lci, p) = match &v.lift {
                Some(l) => (pct(l.relative), format!("[{}, {}]", pct(l.lo), pct(l.hi)), format!("{:.3e}", l.p_value)),
                None => ("(control)".into(), String::new(), String::new()),
            };
            vec![
                v.name.clone(),
                v.model.clone().unwrap_or_else(|| "default".into()),
                format!("{}", v.weight),
                v.sessions.to_string(),
                v.impressions.to_string(),
                v.clicks.to_string(),
                pct(v.ctr.value),
                format!("[{}, {}]", pct(v.ctr.lo), pct(v.ctr.hi)),
                l,
                lci,
                p,
                pct(v.cart_rate.value),
                pct(v.purchase_rate.value),
            ]
        })
        .collect();
    blocks.push(Block::Table(head.iter().map(|s| s.to_string()).collect(), rows));
    if r.variants.iter().any(|v| v.impressions > 0) {
        let stem = dir.join("ctr");
        let bars = BarChart {
            title: format!("{}: click-through rate per variant (%)", r.experiment),
            x_label: "variant".into(),
            y_label: "CTR (%)".into(),
            bars: r.variants.iter().map(|v| (v.name.clone(), 100.0 * v.ctr.value)).collect(),
        };
        let written = bars.write(&stem).map_err(viz)?;
        blocks.push(Block::Svg(stem.with_extension("svg")));
        files.extend(written);
        let series: Vec<Series> = r
            .variants
            .iter()
            .filter(|v| !v.by_position.is_empty())
            .map(|v| {
                Series::new(&v.name, v.by_position.iter().map(|p| (p.position as f64 + 1.0, 100.0 * p.ctr)).collect())
            })
            .collect();
        if !series.is_empty() {
            let stem = dir.join("ctr_by_position");
            let chart = LineChart {
                title: format!("{}: CTR by position (%)", r.experiment),
                x_label: "position (1 = top)".into(),
                y_label: "CTR (%)".into(),
                series,
            };
            files.extend(chart.write(&stem).map_err(viz)?);
            blocks.push(Block::Svg(stem.with_extension("svg")));
        }
    }
    let page = HtmlReport { title: format!("Experiment {}", r.experiment), blocks };
    files.push(page.write(&dir.join("report.html")).map_err(viz)?);
    Ok(files)
}
