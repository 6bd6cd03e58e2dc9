//! Image montages of clusters: one row of tiles per cluster (noise last), each row headed by
//! a strip whose colour encodes the cluster's purity (green: one label, red: mixed, grey:
//! noise). Used for Fashion-MNIST digits and catalog photos alike.

use std::path::Path;

use image::{Rgb, RgbImage};

use crate::{Error, Result};

/// One row of the montage.
pub struct MontageRow {
    /// Share of the row's most common label; `None` for the noise row.
    pub purity: Option<f32>,
    /// The row's pictures (any size; each is fitted into a tile).
    pub tiles: Vec<RgbImage>,
}

const PAD: u32 = 2;
const STRIP: u32 = 8;

/// Writes rows of tiles `tile_w` × `tile_h` (pictures scaled to fit, centred on white) as a
/// PNG at `path`.
pub fn write_montage(path: &Path, rows: &[MontageRow], tile_w: u32, tile_h: u32) -> Result<()> {
    if rows.is_empty() {
        return Err(Error::Empty(format!("montage {}", path.display())));
    }
    let per_row = rows.iter().map(|r| r.tiles.len()).max().unwrap_or(0).max(1) as u32;
    let width = STRIP + PAD + per_row * (tile_w + PAD);
    let height = rows.len() as u32 * (tile_h + PAD);
    let mut canvas = RgbImage::from_pixel(width, height, Rgb([255, 255, 255]));
    for (n, row) in rows.iter().enumerate() {
        let y0 = n as u32 * (tile_h + PAD);
        let shade = match row.purity {
            None => Rgb([150, 150, 150]),
            Some(share) => Rgb([(255.0 * (1.0 - share)) as u8, (200.0 * share) as u8, 60]),
        };
        for y in y0..y0 + tile_h {
            for x in 0..STRIP {
                canvas.put_pixel(x, y, shade);
            }
        }
        for (j, tile) in row.tiles.iter().enumerate() {
            let fitted = fit(tile, tile_w, tile_h);
            let x0 = STRIP + PAD + j as u32 * (tile_w + PAD) + (tile_w - fitted.width()) / 2;
            let y1 = y0 + (tile_h - fitted.height()) / 2;
            image::imageops::overlay(&mut canvas, &fitted, x0 as i64, y1 as i64);
        }
    }
    canvas.save(path).map_err(|e| Error::Draw { path: path.to_path_buf(), message: e.to_string() })
}

/// The picture scaled (up by whole factors with nearest-neighbour, down smoothly) to fit the tile.
fn fit(img: &RgbImage, w: u32, h: u32) -> RgbImage {
    let (iw, ih) = img.dimensions();
    if iw == 0 || ih == 0 {
        return RgbImage::new(1, 1);
    }
    if iw <= w && ih <= h {
        let factor = (w / iw).min(h / ih).max(1);
        return image::imageops::resize(img, iw * factor, ih * factor, image::imageops::FilterType::Nearest);
    }
    let scale = (w as f32 / iw as f32).min(h as f32 / ih as f32);
    let (nw, nh) = (((iw as f32 * scale) as u32).max(1), ((ih as f32 * scale) as u32).max(1));
    image::imageops::resize(img, nw, nh, image::imageops::FilterType::Triangle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_and_tiles_land_where_expected() {
        let dir = std::env::temp_dir().join(format!("warmstart-montage-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("m.png");
        let black = RgbImage::from_pixel(4, 4, Rgb([0, 0, 0]));
        let wide = RgbImage::from_pixel(100, 20, Rgb([10, 10, 10]));
        let rows = vec![
            MontageRow { purity: Some(1.0), tiles: vec![black.clone(), black.clone(), wide] },
            MontageRow { purity: None, tiles: vec![black] },
        ];
        write_montage(&path, &rows, 20, 20).unwrap();
        let out = image::open(&path).unwrap().to_rgb8();
        assert_eq!(out.dimensions(), (STRIP + PAD + 3 * 22, 44));
        // a pure row's strip is green, the noise row's grey
        assert_eq!(out.get_pixel(0, 0), &Rgb([0, 200, 60]));
        assert_eq!(out.get_pixel(0, 30), &Rgb([150, 150, 150]));
        // the 4×4 tile was scaled up ×5 to fill its 20×20 tile
        assert_eq!(out.get_pixel(STRIP + PAD + 10, 10), &Rgb([0, 0, 0]));
        // the wide picture was scaled down to 20×4, centred vertically; white above it
        assert_eq!(out.get_pixel(STRIP + PAD + 2 * 22 + 10, 2), &Rgb([255, 255, 255]));
        assert_eq!(out.get_pixel(STRIP + PAD + 2 * 22 + 10, 9), &Rgb([10, 10, 10]));
        assert!(write_montage(&path, &[], 20, 20).is_err());
    }
}
