//! Handcrafted colour and texture features: an HSV colour histogram and rotation-variant
//! uniform local binary patterns (LBP, Ojala et al. 2002) at radius 1 and 2, computed on the
//! product (pixels that are not near-white background). The texture signal CLIP-style models
//! learn weakly; usable alone (`texture/image`) or fused with other vectors.

use image::imageops::FilterType;
use image::{DynamicImage, RgbImage};
use rayon::prelude::*;

use crate::{ImageEncoder, Result};

/// Hue bins of chromatic pixels.
const HUE_BINS: usize = 12;
/// Colour histogram length: hue × 2 saturation × 2 value bins for chromatic pixels, then
/// 4 grey levels for achromatic ones.
pub const COLOUR_BINS: usize = HUE_BINS * 4 + 4;
/// LBP histogram length: 58 uniform patterns and one bin for all others.
pub const LBP_BINS: usize = 59;
/// Height and width images are resized to before LBP (the fashion photos' own size).
const SIZE: (u32, u32) = (80, 60);

/// Colour and texture features of one image, each block a normalised histogram.
#[derive(Debug, Clone, PartialEq)]
pub struct TextureFeatures {
    /// Colour histogram (sums to 1).
    pub colour: Vec<f32>,
    /// Uniform LBP histogram at radius 1 (sums to 1).
    pub lbp1: Vec<f32>,
    /// Uniform LBP histogram at radius 2 (sums to 1).
    pub lbp2: Vec<f32>,
    /// Share of pixels counted as product (not background).
    pub foreground: f32,
}

/// Bin of each 8-bit pattern: uniform patterns (at most two 0/1 transitions around the
/// circle) get their own bin, the rest share the last.
fn uniform_bins() -> [u8; 256] {
    let mut out = [0u8; 256];
    let mut next = 0u8;
    for (p, slot) in out.iter_mut().enumerate() {
        let p = p as u8;
        let transitions = (p ^ p.rotate_right(1)).count_ones();
        if transitions <= 2 {
            *slot = next;
            next += 1;
        } else {
            *slot = (LBP_BINS - 1) as u8;
        }
    }
    debug_assert_eq!(next as usize, LBP_BINS - 1);
    out
}

/// Colour bin of an RGB pixel.
fn colour_bin(r: u8, g: u8, b: u8) -> usize {
    let (r, g, b) = (r as f32 / 255.0, g as f32 / 255.0, b as f32 / 255.0);
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    let v = max;
    let s = if max > 0.0 { (max - min) / max } else { 0.0 };
    if s < 0.2 || v < 0.2 {
        // black, dark grey, light grey, white
        return HUE_BINS * 4 + ((v * 4.0) as usize).min(3);
    }
    let d = max - min;
    let h = if max == r {
        ((g - b) / d).rem_euclid(6.0)
    } else if max == g {
        (b - r) / d + 2.0
    } else {
        (r - g) / d + 4.0
    } / 6.0;
    let hb = ((h * HUE_BINS as f32) as usize).min(HUE_BINS - 1);
    let sb = usize::from(s >= 0.6);
    let vb = usize::from(v >= 0.6);
    hb * 4 + sb * 2 + vb
}

/// Whether a pixel looks like the white studio background.
fn is_background(r: u8, g: u8, b: u8) -> bool {
    r.min(g).min(b) > 235
}

impl TextureFeatures {
    /// Features of an image of any size or colour type (grayscale is read as RGB).
    pub fn of(img: &DynamicImage) -> TextureFeatures {
        let rgb: RgbImage = if (img.height(), img.width()) == SIZE {
            img.to_rgb8()
        } else {
            image::imageops::resize(&img.to_rgb8(), SIZE.1, SIZE.0, FilterType::Triangle)
        };
        Self::of_rgb(&rgb)
    }

    /// Features of an RGB image as given (no resizing).
    pub fn of_rgb(rgb: &RgbImage) -> TextureFeatures {
        let (w, h) = (rgb.width() as usize, rgb.height() as usize);
        let px = rgb.as_raw();
        let mut mask: Vec<bool> = px.chunks_exact(3).map(|p| !is_background(p[0], p[1], p[2])).collect();
        let fg = mask.iter().filter(|m| **m).count();
        if fg * 20 < mask.len() {
            // (almost) all white: use every pixel
            mask.iter_mut().for_each(|m| *m = true);
        }
        let mut colour = vec![0f32; COLOUR_BINS];
        for (p, m) in px.chunks_exact(3).zip(&mask) {
            if *m {
                colour[colour_bin(p[0], p[1], p[2])] += 1.0;
            }
        }
        let gray: Vec<f32> =
            px.chunks_exact(3).map(|p| 0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32).collect();
        let bins = uniform_bins();
        let lbp = |radius: usize| -> Vec<f32> {
            let mut hist = vec![0f32; LBP_BINS];
            let r = radius as isize;
            let offsets: [(isize, isize); 8] = [(-r, -r), (-r, 0), (-r, r), (0, r), (r, r), (r, 0), (r, -r), (0, -r)];
            for y in radius..h.saturating_sub(radius) {
                for x in radius..w.saturating_sub(radius) {
                    if !mask[y * w + x] {
                        continue;
                    }
                    let c = gray[y * w + x];
                    let mut code = 0u8;
                    for (bit, (dy, dx)) in offsets.iter().enumerate() {
                        let n = gray[(y as isize + dy) as usize * w + (x as isize + dx) as usize];
                        // a small tolerance keeps flat areas stable under JPEG noise
                        if n >= c - 2.0 {
                            code |= 1 << bit;
                        }
                    }
                    hist[bins[code as usize] as usize] += 1.0;
                }
            }
            normalise_sum(hist)
        };
        TextureFeatures {
            colour: normalise_sum(colour),
            lbp1: lbp(1),
            lbp2: lbp(2),
            foreground: fg as f32 / mask.len().max(1) as f32,
        }
    }

    /// One L2-normalised vector: the square roots of the three histograms (Hellinger
    /// kernel), weighted `colour_weight` : (1 − `colour_weight`) between colour and texture.
    pub fn vector(&self, colour_weight: f32) -> Vec<f32> {
        let wc = colour_weight.clamp(0.0, 1.0).sqrt();
        let wt = ((1.0 - colour_weight.clamp(0.0, 1.0)) / 2.0).sqrt();
        let mut out = Vec::with_capacity(COLOUR_BINS + 2 * LBP_BINS);
        out.extend(self.colour.iter().map(|x| x.sqrt() * wc));
        out.extend(self.lbp1.iter().map(|x| x.sqrt() * wt));
        out.extend(self.lbp2.iter().map(|x| x.sqrt() * wt));
        let n = out.iter().map(|x| x * x).sum::<f32>().sqrt();
        if n > 0.0 {
            out.iter_mut().for_each(|x| *x /= n);
        }
        out
    }
}

fn normalise_sum(mut h: Vec<f32>) -> Vec<f32> {
    let s: f32 = h.iter().sum();
    if s > 0.0 {
        h.iter_mut().for_each(|x| *x /= s);
    }
    h
}

/// The handcrafted features as an [`ImageEncoder`] (`texture/image`, 170 dimensions).
#[derive(Debug, Clone)]
pub struct TextureEncoder {
    /// Share of colour in the vector (the rest is texture).
    pub colour_weight: f32,
}

impl Default for TextureEncoder {
    fn default() -> Self {
        TextureEncoder { colour_weight: 0.5 }
    }
}

impl ImageEncoder for TextureEncoder {
    fn id(&self) -> String {
        "texture/image".into()
    }

    fn dim(&self) -> usize {
        COLOUR_BINS + 2 * LBP_BINS
    }

    fn encode_images(&self, images: &[DynamicImage]) -> Result<Vec<f32>> {
        let rows: Vec<Vec<f32>> =
            images.par_iter().map(|i| TextureFeatures::of(i).vector(self.colour_weight)).collect();
        Ok(rows.concat())
    }
}
