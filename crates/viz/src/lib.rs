//! Pictures of results written as SVG and PNG with `plotters`: line charts (loss and metric
//! curves), scatter maps (t-SNE layouts coloured by group) and bar charts (cluster sizes);
//! self-contained HTML galleries of recommendations ([`gallery`]) and PNG montages of clusters'
//! pictures ([`montage`]). Text is drawn with a TrueType font found on the system (DejaVu Sans by
//! default; `WARMSTART_FONT` names another file).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;

pub mod charts;
pub mod gallery;
pub mod montage;
pub mod report;

pub use charts::{BarChart, ScatterChart};
pub use gallery::{Gallery, GalleryItem, GalleryRow};
pub use montage::{write_montage, MontageRow};
pub use report::{Block, HtmlReport};

/// Errors of the viz crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No usable font for labels.
    #[error("no TrueType font for chart labels (tried {tried}); install fonts-dejavu-core or set WARMSTART_FONT")]
    NoFont {
        /// Paths tried.
        tried: String,
    },
    /// Nothing to draw.
    #[error("chart `{0}`: no finite points to draw")]
    Empty(String),
    /// Drawing or writing failed.
    #[error("drawing {path}: {message}")]
    Draw {
        /// Output file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
}

/// Result alias for the viz crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/local/share/fonts/DejaVuSans.ttf",
    "/Library/Fonts/Arial.ttf",
];

/// Registers the label font once; later calls return the first outcome.
fn ensure_font() -> Result<()> {
    static FONT: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    FONT.get_or_init(|| {
        let mut candidates: Vec<PathBuf> = std::env::var_os("WARMSTART_FONT").map(PathBuf::from).into_iter().collect();
        candidates.extend(FONT_PATHS.iter().map(PathBuf::from));
        for path in &candidates {
            if let Ok(bytes) = std::fs::read(path) {
                // plotters keeps the font for the life of the process
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return Ok(());
                }
            }
        }
        Err(candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))
    })
    .clone()
    .map_err(|tried| Error::NoFont { tried })
}

/// One named line.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend label.
    pub name: String,
    /// Points in x order.
    pub points: Vec<(f64, f64)>,
}

impl Series {
    /// A series from `(x, y)` points.
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Series {
        Series { name: name.into(), points }
    }
}

/// A line chart: title, axis labels and one or more series (a logarithmic y axis when `log_y`).
#[derive(Debug, Clone, PartialEq)]
pub struct LineChart {
    /// Title above the plot.
    pub title: String,
    /// Label of the x axis.
    pub x_label: String,
    /// Label of the y axis.
    pub y_label: String,
    /// The lines.
    pub series: Vec<Series>,
}

pub(crate) const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// A picture that can be drawn on any plotters backend.
pub(crate) trait Picture {
    fn draw_on<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> std::result::Result<(), String>;
}

/// Draws the same picture into `<stem>.svg` and `<stem>.png`; returns both paths.
pub(crate) fn write_svg_and_png(picture: &impl Picture, stem: &Path, size: (u32, u32)) -> Result<Vec<PathBuf>> {
    ensure_font()?;
    let svg = stem.with_extension("svg");
    let png = stem.with_extension("png");
    let fail = |path: &Path, e: String| Error::Draw { path: path.to_path_buf(), message: e };
    {
        let root = SVGBackend::new(&svg, size).into_drawing_area();
        picture.draw_on(&root).map_err(|e| fail(&svg, e))?;
        root.present().map_err(|e| fail(&svg, e.to_string()))?;
    }
    {
        let root = BitMapBackend::new(&png, size).into_drawing_area();
        picture.draw_on(&root).map_err(|e| fail(&png, e))?;
        root.present().map_err(|e| fail(&png, e.to_string()))?;
    }
    Ok(vec![svg, png])
}

/// Bounds of finite points, padded; `None` when there is none.
pub(crate) fn bounds(points: impl Iterator<Item = (f64, f64)>, pad_x: bool) -> Option<(f64, f64, f64, f64)> {
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    let mut any = false;
    for (x, y) in points.filter(|p| p.0.is_finite() && p.1.is_finite()) {
        any = true;
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    if !any {
        return None;
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    let pad = ((y1 - y0) * 0.05).max(1e-9);
    let xpad = if pad_x { (x1 - x0) * 0.05 } else { 0.0 };
    Some((x0 - xpad, x1 + xpad, y0 - pad, y1 + pad))
}

impl LineChart {
    /// Writes `<stem>.svg` and `<stem>.png` (900 × 540); returns both paths.
    pub fn write(&self, stem: &Path) -> Result<Vec<PathBuf>> {
        if self.bounds().is_none() {
            return Err(Error::Empty(self.title.clone()));
        }
        write_svg_and_png(self, stem, (900, 540))
    }

    fn bounds(&self) -> Option<(f64, f64, f64, f64)> {
        bounds(self.series.iter().flat_map(|s| s.points.iter().copied()), false)
    }
}

impl Picture for LineChart {
    fn draw_on<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> std::result::Result<(), String> {
        let (x0, x1, y0, y1) = self.bounds().ok_or("no finite points")?;
        let s = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
        root.fill(&WHITE).map_err(s)?;
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, ("sans-serif", 24))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(s)?;
        chart
            .configure_mesh()
            .x_desc(&self.x_label)
            .y_desc(&self.y_label)
            .label_style(("sans-serif", 14))
            .axis_desc_style(("sans-serif", 16))
            .draw()
            .map_err(s)?;
        for (i, series) in self.series.iter().enumerate() {
            let colour = PALETTE[i % PALETTE.len()];
            let points: Vec<(f64, f64)> =
                series.points.iter().copied().filter(|p| p.0.is_finite() && p.1.is_finite()).collect();
            let style = ShapeStyle::from(&colour).stroke_width(2);
            let drawn = if points.len() == 1 {
                chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, style.filled()))).map_err(s)?
            } else {
                chart.draw_series(LineSeries::new(points, style)).map_err(s)?
            };
            drawn.label(&series.name).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], ShapeStyle::from(&colour).stroke_width(2))
            });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()
            .map_err(s)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_svg_and_png_with_the_labels() {
        let dir = std::env::temp_dir().join(format!("warmstart-viz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let chart = LineChart {
            title: "training loss".into(),
            x_label: "step".into(),
            y_label: "InfoNCE".into(),
            series: vec![
                Series::new("train", (0..50).map(|i| (i as f64, 5.0 / (1.0 + i as f64))).collect()),
                Series::new("held out", vec![(10.0, 1.0), (49.0, 0.4)]),
            ],
        };
        let files = chart.write(&dir.join("loss")).unwrap();
        let svg = std::fs::read_to_string(&files[0]).unwrap();
        assert!(svg.contains("training loss") && svg.contains("held out") && svg.contains("InfoNCE"));
        let png = std::fs::read(&files[1]).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        let empty = LineChart { series: vec![Series::new("x", vec![(0.0, f64::NAN)])], ..chart };
        assert!(matches!(empty.write(&dir.join("empty")), Err(Error::Empty(_))));
        std::fs::remove_dir_all(&dir).ok();
    }
}
