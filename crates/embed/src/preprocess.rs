//! Image preprocessing in the CLIP way: decode, convert to RGB, resize the shortest side to
//! the model's size (bicubic), centre crop, scale to `[0, 1]` and normalise per channel.

use std::path::Path;

use image::imageops::FilterType;

use crate::{Error, Result};

/// How images are turned into the model's pixel tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct ImagePreprocess {
    /// Side of the square the model reads.
    pub size: usize,
    /// Per-channel mean (RGB).
    pub mean: [f32; 3],
    /// Per-channel standard deviation (RGB).
    pub std: [f32; 3],
}

impl Default for ImagePreprocess {
    /// OpenAI CLIP's values (`preprocessor_config.json` of openai/clip-vit-base-patch32).
    fn default() -> Self {
        ImagePreprocess {
            size: 224,
            mean: [0.481_454_66, 0.457_827_5, 0.408_210_73],
            std: [0.268_629_54, 0.261_302_6, 0.275_777_1],
        }
    }
}

impl ImagePreprocess {
    /// Reads `preprocessor_config.json` (Hugging Face) when present; missing fields keep
    /// the CLIP defaults, `image_size` of the model config sets the size.
    pub fn from_dir(dir: &Path, image_size: usize) -> Result<ImagePreprocess> {
        let mut p = ImagePreprocess { size: image_size, ..Default::default() };
        let path = dir.join("preprocessor_config.json");
        if !path.is_file() {
            return Ok(p);
        }
        let v = crate::read_json(&path)?;
        let triple = |key: &str| -> Result<Option<[f32; 3]>> {
            match v.get(key) {
                None => Ok(None),
                Some(a) => {
                    let xs: Vec<f32> = a
                        .as_array()
                        .map(|a| a.iter().filter_map(|x| x.as_f64()).map(|x| x as f32).collect())
                        .unwrap_or_default();
                    if xs.len() != 3 {
                        return Err(Error::ModelFile {
                            path: path.clone(),
                            message: format!("`{key}` needs 3 numbers"),
                        });
                    }
                    Ok(Some([xs[0], xs[1], xs[2]]))
                }
            }
        };
        if let Some(m) = triple("image_mean")? {
            p.mean = m;
        }
        if let Some(s) = triple("image_std")? {
            if s.iter().any(|x| *x <= 0.0) {
                return Err(Error::ModelFile { path, message: "`image_std` must be positive".into() });
            }
            p.std = s;
        }
        Ok(p)
    }

    /// Decodes `bytes` and returns the normalised pixels, channel-major (`3 × size × size`).
    pub fn pixels(&self, bytes: &[u8]) -> Result<Vec<f32>> {
        let img = image::load_from_memory(bytes).map_err(|e| Error::Image(e.to_string()))?;
        Ok(self.pixels_of(&img))
    }

    /// Normalised pixels of a decoded image.
    pub fn pixels_of(&self, img: &image::DynamicImage) -> Vec<f32> {
        let rgb = img.to_rgb8();
        let (w, h) = rgb.dimensions();
        let s = self.size as u32;
        let scale = s as f64 / w.min(h).max(1) as f64;
        let (nw, nh) = (((w as f64 * scale).round() as u32).max(s), ((h as f64 * scale).round() as u32).max(s));
        let resized = image::imageops::resize(&rgb, nw, nh, FilterType::CatmullRom);
        let (x0, y0) = ((nw - s) / 2, (nh - s) / 2);
        let n = self.size * self.size;
        let mut out = vec![0f32; 3 * n];
        for y in 0..s {
            for x in 0..s {
                let px = resized.get_pixel(x0 + x, y0 + y);
                let at = (y * s + x) as usize;
                for c in 0..3 {
                    out[c * n + at] = (px[c] as f32 / 255.0 - self.mean[c]) / self.std[c];
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resizes_shortest_side_crops_centre_and_normalises() {
        // 40×20: left half red, right half blue. Shortest side → 8 gives 16×8; the centre
        // crop 8×8 spans x 4..12, so its left half is red and its right half blue.
        let mut img = image::RgbImage::new(40, 20);
        for (x, _, p) in img.enumerate_pixels_mut() {
            *p = if x < 20 { image::Rgb([255, 0, 0]) } else { image::Rgb([0, 0, 255]) };
        }
        let mut png = Vec::new();
        image::DynamicImage::ImageRgb8(img)
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        let p = ImagePreprocess { size: 8, mean: [0.5; 3], std: [0.5; 3] };
        let px = p.pixels(&png).unwrap();
        assert_eq!(px.len(), 3 * 64);
        let at = |c: usize, x: usize, y: usize| px[c * 64 + y * 8 + x];
        assert!((at(0, 0, 4) - 1.0).abs() < 0.05 && (at(2, 0, 4) + 1.0).abs() < 0.05, "left is red");
        assert!((at(2, 7, 4) - 1.0).abs() < 0.05 && (at(0, 7, 4) + 1.0).abs() < 0.05, "right is blue");
        assert!(matches!(p.pixels(b"not an image"), Err(Error::Image(_))));
    }
}
