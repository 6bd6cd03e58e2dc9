//! NumPy `.npy` files (format 1.0 written; 1.0 and 2.0 read; little-endian, C order), for the
//! Python cross-checks and the benchmarks' shared data.

use std::io::{Read, Write};
use std::path::Path;

fn io_err(path: &Path, e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}: {e}", path.display()))
}

/// Writes an array of `shape` with dtype `descr` (`<f4`, `<i4`, `<i8`) from its raw bytes.
pub fn write(path: &Path, descr: &str, shape: &[usize], data: &[u8]) -> std::io::Result<()> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape = if dims.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    // magic (6) + version (2) + length (2) + header + newline, padded to 64 bytes
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut w = std::io::BufWriter::new(std::fs::File::create(path).map_err(|e| io_err(path, e))?);
    w.write_all(b"\x93NUMPY\x01\x00")?;
    w.write_all(&(header.len() as u16).to_le_bytes())?;
    w.write_all(header.as_bytes())?;
    w.write_all(data)?;
    w.flush()
}

/// Reads a C-order array of dtype `descr` (4- or 8-byte elements): its shape and raw bytes.
pub fn read(path: &Path, descr: &str) -> std::io::Result<(Vec<usize>, Vec<u8>)> {
    let mut r = std::io::BufReader::new(std::fs::File::open(path).map_err(|e| io_err(path, e))?);
    let mut magic = [0u8; 8];
    r.read_exact(&mut magic)?;
    if &magic[..6] != b"\x93NUMPY" {
        return Err(io_err(path, "not an .npy file"));
    }
    let hlen = if magic[6] == 1 {
        let mut b = [0u8; 2];
        r.read_exact(&mut b)?;
        u16::from_le_bytes(b) as usize
    } else {
        let mut b = [0u8; 4];
        r.read_exact(&mut b)?;
        u32::from_le_bytes(b) as usize
    };
    let mut h = vec![0u8; hlen.min(1 << 20)];
    r.read_exact(&mut h)?;
    let h = String::from_utf8_lossy(&h).to_string();
    if !h.contains(&format!("'descr': '{descr}'")) || h.contains("'fortran_order': True") {
        return Err(io_err(path, format!("need a C-order {descr} array, header is {h}")));
    }
    let shape_text = h.split("'shape': (").nth(1).and_then(|s| s.split(')').next()).unwrap_or("");
    let shape: Vec<usize> = shape_text.split(',').filter_map(|s| s.trim().parse().ok()).collect();
    let width: usize = descr.get(2..).and_then(|w| w.parse().ok()).unwrap_or(4);
    let want = shape.iter().try_fold(width, |a, &d| a.checked_mul(d)).ok_or_else(|| io_err(path, "shape overflows"))?;
    let mut data = Vec::new();
    r.read_to_end(&mut data)?;
    if data.len() != want {
        return Err(io_err(path, format!("{} data bytes for shape ({shape_text})", data.len())));
    }
    Ok((shape, data))
}

/// Reads a 2-D `<f4` array: (rows, cols, values).
pub fn read_f32_matrix(path: &Path) -> std::io::Result<(usize, usize, Vec<f32>)> {
    let (shape, b) = read(path, "<f4")?;
    let [rows, cols] = shape[..] else { return Err(io_err(path, "need a 2-D array")) };
    Ok((rows, cols, b.chunks_exact(4).map(|x| f32::from_le_bytes([x[0], x[1], x[2], x[3]])).collect()))
}

/// Reads a 2-D `<i4` array: (rows, cols, values).
pub fn read_i32_matrix(path: &Path) -> std::io::Result<(usize, usize, Vec<i32>)> {
    let (shape, b) = read(path, "<i4")?;
    let [rows, cols] = shape[..] else { return Err(io_err(path, "need a 2-D array")) };
    Ok((rows, cols, b.chunks_exact(4).map(|x| i32::from_le_bytes([x[0], x[1], x[2], x[3]])).collect()))
}

/// `f32` values as little-endian bytes.
pub fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// `i64` values as little-endian bytes.
pub fn i64_bytes(v: impl IntoIterator<Item = i64>) -> Vec<u8> {
    v.into_iter().flat_map(|x| x.to_le_bytes()).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn arrays_round_trip() {
        let dir = std::env::temp_dir().join(format!("npy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.npy");
        super::write(&p, "<f4", &[2, 3], &super::f32_bytes(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.5])).unwrap();
        assert_eq!(super::read_f32_matrix(&p).unwrap(), (2, 3, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.5]));
        assert!(super::read_i32_matrix(&p).is_err(), "wrong dtype is refused");
        std::fs::write(&p, b"\x93NUMPY\x01\x00\x10\x00{'descr': '<f4',").unwrap();
        assert!(super::read_f32_matrix(&p).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
