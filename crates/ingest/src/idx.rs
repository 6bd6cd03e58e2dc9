//! IDX files (the MNIST / Fashion-MNIST format), plain or gzip-compressed: `u8` images and
//! labels. Used by the clustering analysis (`warmstart analyze fashion-mnist`).

use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;

use crate::{Error, Result};

/// Fashion-MNIST's class names, by label.
pub const FASHION_MNIST_CLASSES: [&str; 10] =
    ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

/// Where Debian's `dataset-fashion-mnist` package puts the files.
pub const DEBIAN_FASHION_MNIST: &str = "/usr/share/datasets/fashion-mnist";

/// Greyscale images of one size, row-major, one byte per pixel.
#[derive(Debug, Clone, PartialEq)]
pub struct IdxImages {
    /// Rows per image.
    pub rows: usize,
    /// Columns per image.
    pub cols: usize,
    /// `count × rows × cols` pixels.
    pub pixels: Vec<u8>,
}

impl IdxImages {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.pixels.len() / (self.rows * self.cols).max(1)
    }
    /// Whether there is no image.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Pixels of image `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.rows * self.cols;
        &self.pixels[i * n..(i + 1) * n]
    }
}

/// Largest decompressed IDX file read (Fashion-MNIST's training images are 47 MB).
const MAX_DECOMPRESSED: u64 = 1 << 30;

fn read_all(path: &Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        GzDecoder::new(bytes.as_slice())
            .take(MAX_DECOMPRESSED + 1)
            .read_to_end(&mut out)
            .map_err(|e| Error::malformed(path, None, format!("truncated or corrupt gzip: {e}")))?;
        if out.len() as u64 > MAX_DECOMPRESSED {
            return Err(Error::malformed(path, None, format!("decompresses to more than {MAX_DECOMPRESSED} bytes")));
        }
        Ok(out)
    } else {
        Ok(bytes)
    }
}

/// Checks the magic number (`0x00 0x00 0x08 ndim`: unsigned bytes) and returns the dimensions.
fn header(path: &Path, bytes: &[u8], ndim: u8) -> Result<Vec<usize>> {
    let need = 4 + 4 * ndim as usize;
    if bytes.len() < need || bytes[0] != 0 || bytes[1] != 0 || bytes[2] != 8 || bytes[3] != ndim {
        return Err(Error::malformed(
            path,
            None,
            format!(
                "not an IDX file of unsigned bytes with {ndim} dimension(s) (magic {:02x?})",
                &bytes[..bytes.len().min(4)]
            ),
        ));
    }
    let dims: Vec<usize> = (0..ndim as usize)
        .map(|k| u32::from_be_bytes([bytes[4 + 4 * k], bytes[5 + 4 * k], bytes[6 + 4 * k], bytes[7 + 4 * k]]) as usize)
        .collect();
    // checked: a crafted header (three dimensions of 2³²−1) must not overflow
    let body = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| Error::malformed(path, None, format!("header dimensions {dims:?} are too large")))?;
    if bytes.len() - need < body {
        return Err(Error::malformed(
            path,
            None,
            format!("truncated: header says {body} bytes, {} present", bytes.len() - need),
        ));
    }
    Ok(dims)
}

/// Reads the first `limit` images (all when `None`) of an IDX image file.
pub fn read_idx_images(path: &Path, limit: Option<usize>) -> Result<IdxImages> {
    let bytes = read_all(path)?;
    let dims = header(path, &bytes, 3)?;
    let (n, rows, cols) = (dims[0].min(limit.unwrap_or(usize::MAX)), dims[1], dims[2]);
    Ok(IdxImages { rows, cols, pixels: bytes[16..16 + n * rows * cols].to_vec() })
}

/// Reads the first `limit` labels (all when `None`) of an IDX label file.
pub fn read_idx_labels(path: &Path, limit: Option<usize>) -> Result<Vec<u8>> {
    let bytes = read_all(path)?;
    let dims = header(path, &bytes, 1)?;
    let n = dims[0].min(limit.unwrap_or(usize::MAX));
    Ok(bytes[8..8 + n].to_vec())
}

/// The Fashion-MNIST test set (`t10k-*`) in `dir`: the first `limit` images and labels.
pub fn fashion_mnist_test(dir: &Path, limit: Option<usize>) -> Result<(IdxImages, Vec<u8>)> {
    let find = |stem: &str| -> PathBuf {
        let gz = dir.join(format!("{stem}.gz"));
        if gz.exists() {
            gz
        } else {
            dir.join(stem)
        }
    };
    let images = read_idx_images(&find("t10k-images-idx3-ubyte"), limit)?;
    let labels_path = find("t10k-labels-idx1-ubyte");
    let labels = read_idx_labels(&labels_path, limit)?;
    if labels.len() != images.len() {
        return Err(Error::malformed(
            labels_path,
            None,
            format!("{} labels for {} images", labels.len(), images.len()),
        ));
    }
    if let Some(bad) = labels.iter().find(|l| **l as usize >= FASHION_MNIST_CLASSES.len()) {
        return Err(Error::malformed(labels_path, None, format!("label {bad} outside 0..10")));
    }
    Ok((images, labels))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(ndim: u8, dims: &[u32], body: &[u8]) -> Vec<u8> {
        let mut b = vec![0, 0, 8, ndim];
        for d in dims {
            b.extend(d.to_be_bytes());
        }
        b.extend(body);
        b
    }

    #[test]
    fn reads_plain_and_gzip_and_names_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let images = idx(3, &[3, 2, 2], &(0..12).collect::<Vec<u8>>());
        std::fs::write(dir.path().join("t10k-images-idx3-ubyte"), &images).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &idx(1, &[3], &[0, 9, 4])).unwrap();
        std::fs::write(dir.path().join("t10k-labels-idx1-ubyte.gz"), gz.finish().unwrap()).unwrap();
        let (im, labels) = fashion_mnist_test(dir.path(), Some(2)).unwrap();
        assert_eq!((im.len(), im.rows, im.cols), (2, 2, 2));
        assert_eq!(im.image(1), &[4, 5, 6, 7]);
        assert_eq!(labels, vec![0, 9]);
        // truncated body, wrong magic, label out of range
        std::fs::write(dir.path().join("short"), &images[..20]).unwrap();
        let e = read_idx_images(&dir.path().join("short"), None).unwrap_err().to_string();
        assert!(e.contains("short") && e.contains("truncated"), "{e}");
        let e = read_idx_labels(&dir.path().join("t10k-images-idx3-ubyte"), None).unwrap_err().to_string();
        assert!(e.contains("not an IDX file"), "{e}");
        std::fs::remove_file(dir.path().join("t10k-labels-idx1-ubyte.gz")).unwrap();
        std::fs::write(dir.path().join("t10k-labels-idx1-ubyte"), idx(1, &[3], &[0, 10, 1])).unwrap();
        let e = fashion_mnist_test(dir.path(), None).unwrap_err().to_string();
        assert!(e.contains("label 10"), "{e}");
    }

    #[test]
    fn crafted_headers_are_errors_not_overflows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("crafted");
        // 2³²−1 in every dimension: the product overflows 64 bits
        std::fs::write(&path, idx(3, &[u32::MAX, u32::MAX, u32::MAX], &[1, 2, 3])).unwrap();
        let e = read_idx_images(&path, None).unwrap_err().to_string();
        assert!(e.contains("crafted") && e.contains("too large"), "{e}");
        // a product that fits but far exceeds the file
        std::fs::write(&path, idx(3, &[65_536, 65_536, 2], &[1, 2, 3])).unwrap();
        let e = read_idx_images(&path, None).unwrap_err().to_string();
        assert!(e.contains("truncated"), "{e}");
        // zero-sized images read as no images, not a division by zero
        std::fs::write(&path, idx(3, &[5, 0, 28], &[])).unwrap();
        assert!(read_idx_images(&path, None).unwrap().is_empty());
    }
}
