//! NumPy `.npy` files for the Python cross-checks and benchmarks (`warmstart_core::npy`).

/// Writes a little-endian `.npy` file (format 1.0) of `shape` with dtype `descr` (`<f4`, `<i8`).
pub fn write(path: &std::path::Path, descr: &str, shape: &[usize], data: &[u8]) -> anyhow::Result<()> {
    use anyhow::Context;
    warmstart_core::npy::write(path, descr, shape, data).with_context(|| format!("writing {}", path.display()))
}

pub use warmstart_core::npy::{f32_bytes, i64_bytes, read_f32_matrix, read_i32_matrix};
