//! Scatter maps (2-D layouts coloured by group) and bar charts.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::{bounds, write_svg_and_png, Error, Picture, Result};

/// Distinct colours for `n` groups: evenly spaced hues.
fn group_colour(i: usize, n: usize) -> HSLColor {
    // alternate lightness so neighbouring hues stay apart when n is large
    let light = if i.is_multiple_of(2) { 0.42 } else { 0.58 };
    HSLColor(i as f64 / n.max(1) as f64, 0.7, light)
}

/// A 2-D map of points, each in a named group (the legend lists the groups in order).
#[derive(Debug, Clone, PartialEq)]
pub struct ScatterChart {
    /// Title above the plot.
    pub title: String,
    /// Group names (legend); a point's group is an index into it.
    pub groups: Vec<String>,
    /// Points: x, y, group.
    pub points: Vec<(f64, f64, usize)>,
}

impl ScatterChart {
    /// Writes `<stem>.svg` and `<stem>.png` (1000 × 800); returns both paths.
    pub fn write(&self, stem: &Path) -> Result<Vec<PathBuf>> {
        if bounds(self.points.iter().map(|p| (p.0, p.1)), true).is_none() {
            return Err(Error::Empty(self.title.clone()));
        }
        if let Some(p) = self.points.iter().find(|p| p.2 >= self.groups.len()) {
            return Err(Error::Draw {
                path: stem.to_path_buf(),
                message: format!("point in group {} of {}", p.2, self.groups.len()),
            });
        }
        write_svg_and_png(self, stem, (1000, 800))
    }
}

impl Picture for ScatterChart {
    fn draw_on<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> std::result::Result<(), String> {
        let (x0, x1, y0, y1) = bounds(self.points.iter().map(|p| (p.0, p.1)), true).ok_or("no finite points")?;
        let s = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
        root.fill(&WHITE).map_err(s)?;
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, ("sans-serif", 24))
            .margin(16)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(s)?;
        chart.configure_mesh().disable_mesh().disable_axes().draw().map_err(s)?;
        let n = self.groups.len();
        for (g, name) in self.groups.iter().enumerate() {
            let colour = group_colour(g, n);
            let count = self.points.iter().filter(|p| p.2 == g).count();
            let pts = self.points.iter().filter(move |p| p.2 == g && p.0.is_finite() && p.1.is_finite());
            chart
                .draw_series(pts.map(|p| Circle::new((p.0, p.1), 2, colour.mix(0.7).filled())))
                .map_err(s)?
                .label(format!("{name} ({count})"))
                .legend(move |(x, y)| Circle::new((x + 8, y), 5, colour.filled()));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 13))
            .draw()
            .map_err(s)?;
        Ok(())
    }
}

/// Vertical bars with category labels.
#[derive(Debug, Clone, PartialEq)]
pub struct BarChart {
    /// Title above the plot.
    pub title: String,
    /// Label of the x axis.
    pub x_label: String,
    /// Label of the y axis.
    pub y_label: String,
    /// Bars in order: label, height.
    pub bars: Vec<(String, f64)>,
}

impl BarChart {
    /// Writes `<stem>.svg` and `<stem>.png` (900 × 540); returns both paths.
    pub fn write(&self, stem: &Path) -> Result<Vec<PathBuf>> {
        if self.bars.is_empty() || self.bars.iter().any(|b| !b.1.is_finite()) {
            return Err(Error::Empty(self.title.clone()));
        }
        write_svg_and_png(self, stem, (900, 540))
    }
}

impl Picture for BarChart {
    fn draw_on<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> std::result::Result<(), String> {
        let s = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
        root.fill(&WHITE).map_err(s)?;
        let top = self.bars.iter().map(|b| b.1).fold(0.0f64, f64::max).max(1e-9) * 1.08;
        let low = self.bars.iter().map(|b| b.1).fold(0.0f64, f64::min);
        let n = self.bars.len();
        let labels: Vec<String> = self.bars.iter().map(|b| b.0.clone()).collect();
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, ("sans-serif", 24))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d((0..n).into_segmented(), low..top)
            .map_err(s)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc(&self.x_label)
            .y_desc(&self.y_label)
            .x_labels(n.min(40))
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .y_label_formatter(&|v| if top >= 20.0 { format!("{v:.0}") } else { format!("{v:.2}") })
            .label_style(("sans-serif", 13))
            .axis_desc_style(("sans-serif", 16))
            .draw()
            .map_err(s)?;
        let colour = crate::PALETTE[0];
        chart
            .draw_series(self.bars.iter().enumerate().map(|(i, b)| {
                let mut bar = Rectangle::new(
                    [(SegmentValue::Exact(i), 0.0), (SegmentValue::Exact(i + 1), b.1)],
                    colour.mix(0.85).filled(),
                );
                bar.set_margin(0, 0, 3, 3);
                bar
            }))
            .map_err(s)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scatter_and_bars_write_both_formats_with_labels() {
        let dir = std::env::temp_dir().join(format!("warmstart-charts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let scatter = ScatterChart {
            title: "t-SNE of items".into(),
            groups: vec!["pens".into(), "paint".into()],
            points: (0..40).map(|i| ((i % 7) as f64, (i / 7) as f64, i % 2)).collect(),
        };
        let files = scatter.write(&dir.join("map")).unwrap();
        let svg = std::fs::read_to_string(&files[0]).unwrap();
        assert!(svg.contains("t-SNE of items") && svg.contains("pens (20)") && svg.contains("paint (20)"));
        assert_eq!(&std::fs::read(&files[1]).unwrap()[1..4], b"PNG");
        let bad = ScatterChart { groups: vec!["only".into()], ..scatter };
        assert!(bad.write(&dir.join("bad")).is_err(), "a point in a group without a name");

        let bars = BarChart {
            title: "cluster sizes".into(),
            x_label: "cluster".into(),
            y_label: "items".into(),
            bars: vec![("c0".into(), 12.0), ("c1".into(), 30.0), ("c2".into(), 3.0)],
        };
        let files = bars.write(&dir.join("sizes")).unwrap();
        let svg = std::fs::read_to_string(&files[0]).unwrap();
        assert!(svg.contains("cluster sizes") && svg.contains("c1") && svg.contains("items"));
        assert!(BarChart { bars: vec![], ..bars }.write(&dir.join("none")).is_err());
        std::fs::remove_dir_all(&dir).ok();
    }
}
