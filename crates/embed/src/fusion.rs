//! Fusion of text and image vectors into one product vector.
//!
//! Both parts are L2-normalised and concatenated with weights `√w` and `√(1 − w)`, so the
//! cosine of two products with both parts is `w · cos_text + (1 − w) · cos_image`; `w = 0.5`
//! is plain concatenation (rescaled to unit length). A product missing a part keeps the
//! other at full length (its block of the missing part is zero), so it still gets a vector,
//! and [`Parts`] records what each vector was made of.

use warmstart_core::ItemVectors;

use crate::{Error, Result};

/// Which parts a fused vector was made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Parts {
    /// Had a text vector.
    pub text: bool,
    /// Had an image vector.
    pub image: bool,
}

/// How many products had which parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct FusionReport {
    /// Text and image.
    pub both: usize,
    /// Text only (e.g. no photo).
    pub text_only: usize,
    /// Image only (e.g. an empty title).
    pub image_only: usize,
    /// Neither: no vector.
    pub neither: usize,
}

/// Fused vectors with their provenance.
#[derive(Debug, Clone)]
pub struct Fused {
    /// One vector per item, `text.dim + image.dim` wide.
    pub vectors: ItemVectors,
    /// Which parts each item had.
    pub parts: Vec<Parts>,
    /// Counts.
    pub report: FusionReport,
}

fn unit(v: &[f32]) -> Option<Vec<f32>> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    (n > 1e-12).then(|| v.iter().map(|x| x / n).collect())
}

/// Fuses per-item text and image vectors (aligned by item) with text weight `text_weight`
/// in `[0, 1]`.
pub fn fuse(text: &ItemVectors, image: &ItemVectors, text_weight: f32) -> Result<Fused> {
    if !(0.0..=1.0).contains(&text_weight) {
        return Err(Error::Fusion(format!("text weight {text_weight} is outside [0, 1]")));
    }
    if text.n_items() != image.n_items() {
        return Err(Error::Fusion(format!("{} text vectors but {} image vectors", text.n_items(), image.n_items())));
    }
    let (dt, di) = (text.dim, image.dim);
    let d = dt + di;
    let (wt, wi) = (text_weight.sqrt(), (1.0 - text_weight).sqrt());
    let mut out = ItemVectors { dim: d, data: vec![0.0; text.n_items() * d], present: vec![false; text.n_items()] };
    let mut parts = Vec::with_capacity(text.n_items());
    let mut report = FusionReport::default();
    for i in 0..text.n_items() {
        let t = if text.present[i] { unit(text.row(i as u32)) } else { None };
        let m = if image.present[i] { unit(image.row(i as u32)) } else { None };
        let row = &mut out.data[i * d..(i + 1) * d];
        match (&t, &m) {
            (Some(t), Some(m)) => {
                row[..dt].iter_mut().zip(t).for_each(|(o, x)| *o = wt * x);
                row[dt..].iter_mut().zip(m).for_each(|(o, x)| *o = wi * x);
                report.both += 1;
            }
            (Some(t), None) => {
                row[..dt].copy_from_slice(t);
                report.text_only += 1;
            }
            (None, Some(m)) => {
                row[dt..].copy_from_slice(m);
                report.image_only += 1;
            }
            (None, None) => report.neither += 1,
        }
        out.present[i] = t.is_some() || m.is_some();
        parts.push(Parts { text: t.is_some(), image: m.is_some() });
    }
    Ok(Fused { vectors: out, parts, report })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cos(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn weighted_concatenation_and_missing_parts() {
        // item 0: both; 1: both; 2: text only; 3: image only; 4: neither
        let text = ItemVectors {
            dim: 2,
            data: vec![1.0, 0.0, 0.6, 0.8, 3.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            present: vec![true, true, true, false, false],
        };
        let image = ItemVectors {
            dim: 3,
            data: vec![0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            present: vec![true, true, false, true, false],
        };
        let f = fuse(&text, &image, 0.7).unwrap();
        assert_eq!(f.vectors.dim, 5);
        assert_eq!(f.report, FusionReport { both: 2, text_only: 1, image_only: 1, neither: 1 });
        assert_eq!(f.vectors.present, vec![true, true, true, true, false]);
        assert_eq!(f.parts[2], Parts { text: true, image: false });
        // cos = 0.7 · 0.6 + 0.3 · 1
        assert!((cos(f.vectors.row(0), f.vectors.row(1)) - (0.7 * 0.6 + 0.3)).abs() < 1e-6);
        for i in 0..4 {
            assert!((cos(f.vectors.row(i), f.vectors.row(i)) - 1.0).abs() < 1e-5, "item {i} is unit length");
        }
        // a text-only item meets a full one through the text block only: √0.7 · cos_text
        assert!((cos(f.vectors.row(0), f.vectors.row(2)) - 0.7f32.sqrt()).abs() < 1e-6);
        assert!(f.vectors.row(4).iter().all(|x| *x == 0.0));
        assert!(fuse(&text, &image, 1.5).is_err());
        let short = ItemVectors { dim: 3, data: vec![0.0; 3], present: vec![false] };
        assert!(matches!(fuse(&text, &short, 0.5), Err(Error::Fusion(_))));
    }
}
