//! Histograms of oriented gradients (HOG, Dalal & Triggs 2005) of small greyscale images:
//! central-difference gradients, unsigned orientations in `bins` bins over [0, π), one
//! magnitude-weighted histogram per `cell × cell` block, the whole vector L2-normalised.
//! Shape features for digits of clothing (Fashion-MNIST), where raw pixels confuse shirts,
//! pullovers and coats.

/// HOG descriptor of a `rows × cols` greyscale image (row-major, any range); length
/// `⌈rows/cell⌉ · ⌈cols/cell⌉ · bins`. A flat image gives the zero vector.
pub fn hog(gray: &[f32], rows: usize, cols: usize, cell: usize, bins: usize) -> Vec<f32> {
    assert_eq!(gray.len(), rows * cols, "image of {rows} × {cols}");
    assert!(cell > 0 && bins > 0, "cell and bins must be positive");
    let (cy, cx) = (rows.div_ceil(cell), cols.div_ceil(cell));
    let mut out = vec![0f32; cy * cx * bins];
    let at = |y: usize, x: usize| gray[y * cols + x];
    for y in 0..rows {
        for x in 0..cols {
            let gx = if x > 0 && x + 1 < cols { at(y, x + 1) - at(y, x - 1) } else { 0.0 };
            let gy = if y > 0 && y + 1 < rows { at(y + 1, x) - at(y - 1, x) } else { 0.0 };
            let magnitude = gx.hypot(gy);
            if magnitude == 0.0 {
                continue;
            }
            let angle = gy.atan2(gx).rem_euclid(std::f32::consts::PI);
            let bin = ((angle / std::f32::consts::PI * bins as f32) as usize).min(bins - 1);
            out[((y / cell) * cx + x / cell) * bins + bin] += magnitude;
        }
    }
    let norm = out.iter().map(|v| v * v).sum::<f32>().sqrt();
    if norm > 0.0 {
        out.iter_mut().for_each(|v| *v /= norm);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edges_fall_in_their_orientation_bin_and_cell() {
        // a vertical edge (dark left, bright right) in the left cell column: horizontal
        // gradient, orientation 0, bin 0
        let (rows, cols) = (8, 8);
        let img: Vec<f32> = (0..rows * cols).map(|i| if i % cols >= 2 { 1.0 } else { 0.0 }).collect();
        let h = hog(&img, rows, cols, 4, 4);
        assert_eq!(h.len(), 2 * 2 * 4);
        let norm: f32 = h.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
        for (i, v) in h.iter().enumerate() {
            let (cell, bin) = (i / 4, i % 4);
            let left = cell % 2 == 0;
            assert_eq!(*v > 0.0, left && bin == 0, "cell {cell} bin {bin}: {v}");
        }
        // the transposed image: vertical gradient, orientation π/2, bin 2 of 4
        let t: Vec<f32> = (0..rows * cols).map(|i| img[(i % cols) * cols + i / cols]).collect();
        let h = hog(&t, rows, cols, 4, 4);
        assert!(h[2] > 0.0 && h[0] == 0.0);
        assert!(hog(&vec![0.5; 64], 8, 8, 4, 9).iter().all(|v| *v == 0.0));
    }
}
