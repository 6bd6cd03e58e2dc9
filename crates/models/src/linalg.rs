//! Small dense linear algebra on `f32` slices: the factor models' inner loops.
//!
//! Kernels are written once, generic over `FMA`; [`simd`] runs a closure compiled for
//! AVX2+FMA when the processor has them (checked once at run time), so one binary is both
//! portable and fast.

use rayon::prelude::*;

/// Dot product with eight independent accumulators (vectorises).
#[inline(always)]
pub(crate) fn dot_k<const FMA: bool>(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut s = [0f32; 8];
    let chunks = n / 8;
    for c in 0..chunks {
        let (x, y) = (&a[c * 8..c * 8 + 8], &b[c * 8..c * 8 + 8]);
        for k in 0..8 {
            s[k] = if FMA { x[k].mul_add(y[k], s[k]) } else { s[k] + x[k] * y[k] };
        }
    }
    let mut total = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
    for i in chunks * 8..n {
        total += a[i] * b[i];
    }
    total
}

/// `y += alpha * x`.
#[inline(always)]
pub(crate) fn axpy_k<const FMA: bool>(alpha: f32, x: &[f32], y: &mut [f32]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi = if FMA { alpha.mul_add(*xi, *yi) } else { *yi + alpha * xi };
    }
}

/// `out = m * v` for a symmetric row-major `n × n` matrix, as a sum of scaled rows (no
/// horizontal reductions).
#[inline(always)]
pub(crate) fn symv_k<const FMA: bool>(m: &[f32], v: &[f32], out: &mut [f32]) {
    let n = v.len();
    out.fill(0.0);
    for (j, &vj) in v.iter().enumerate() {
        axpy_k::<FMA>(vj, &m[j * n..(j + 1) * n], out);
    }
}

/// Portable dot product.
#[inline]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    dot_k::<false>(a, b)
}

/// Portable `y += alpha * x`.
#[inline]
pub(crate) fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    axpy_k::<false>(alpha, x, y)
}

/// Whether the AVX2+FMA kernels can run here.
pub(crate) fn has_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Runs `f` in a function compiled with AVX2 and FMA enabled.
///
/// # Safety
/// The caller must have checked [`has_fma`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn with_fma<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// Runs `f::<true>` compiled for AVX2+FMA when this CPU has them, else `f::<false>`. The
/// macro checks the CPU itself ([`has_fma`]: std caches the answer, so the check is one
/// relaxed load), so no caller can enable the fused kernels by mistake.
#[macro_export]
#[doc(hidden)]
macro_rules! simd {
    ($call_fma:expr, $call_plain:expr) => {{
        #[cfg(target_arch = "x86_64")]
        {
            if $crate::linalg::has_fma() {
                // SAFETY: AVX2 and FMA were detected on this CPU just above.
                unsafe { $crate::linalg::with_fma(|| $call_fma) }
            } else {
                $call_plain
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            $call_plain
        }
    }};
}

/// Adds `Σ rowᵀ row` over the rows of a row-major `rows × f` matrix into `g` (`f × f`).
#[inline(always)]
pub(crate) fn gram_into_k<const FMA: bool>(y: &[f32], f: usize, g: &mut [f32]) {
    for row in y.chunks_exact(f) {
        for i in 0..f {
            let ri = row[i];
            if ri != 0.0 {
                axpy_k::<FMA>(ri, row, &mut g[i * f..(i + 1) * f]);
            }
        }
    }
}

/// `Yᵀ Y` of a row-major `rows × f` factor matrix (`f × f`, row-major), in parallel. The
/// rows are cut into at most 64 fixed blocks whose partial sums are added in block order, so
/// the result is the same bit for bit whatever the threads and their scheduling (a rayon
/// fold/reduce would add in whatever order work was stolen).
pub(crate) fn gram(y: &[f32], f: usize) -> Vec<f32> {
    let f = f.max(1);
    let rows = y.len() / f;
    let block = rows.div_ceil(64).max(64) * f;
    let partials: Vec<Vec<f32>> = y
        .par_chunks(block)
        .map(|part| {
            let mut g = vec![0f32; f * f];
            simd!(gram_into_k::<true>(part, f, &mut g), gram_into_k::<false>(part, f, &mut g));
            g
        })
        .collect();
    let mut g = vec![0f32; f * f];
    for part in &partials {
        axpy(1.0, part, &mut g);
    }
    g
}

/// Cholesky factor `L` (row-major, f64) of a symmetric positive definite `n × n` matrix;
/// `None` if it is not positive definite.
pub(crate) fn cholesky(a: &[f32], n: usize) -> Option<Vec<f64>> {
    let mut l = vec![0f64; n * n];
    for i in 0..n {
        for j in 0..=i {
            let mut s = a[i * n + j] as f64;
            for k in 0..j {
                s -= l[i * n + k] * l[j * n + k];
            }
            if i == j {
                if s <= 0.0 {
                    return None;
                }
                l[i * n + i] = s.sqrt();
            } else {
                l[i * n + j] = s / l[j * n + j];
            }
        }
    }
    Some(l)
}

/// Solves `L Lᵀ x = b` given the factor from [`cholesky`].
pub(crate) fn cholesky_apply(l: &[f64], b: &[f32]) -> Vec<f32> {
    let n = b.len();
    let mut y = vec![0f64; n];
    for i in 0..n {
        let mut s = b[i] as f64;
        for k in 0..i {
            s -= l[i * n + k] * y[k];
        }
        y[i] = s / l[i * n + i];
    }
    let mut x = vec![0f64; n];
    for i in (0..n).rev() {
        let mut s = y[i];
        for k in i + 1..n {
            s -= l[k * n + i] * x[k];
        }
        x[i] = s / l[i * n + i];
    }
    x.into_iter().map(|v| v as f32).collect()
}

/// Solves `A x = b` for symmetric positive definite `A` (row-major `n × n`) by Cholesky in
/// f64; returns `None` if `A` is not positive definite.
pub(crate) fn cholesky_solve(a: &[f32], b: &[f32]) -> Option<Vec<f32>> {
    cholesky(a, b.len()).map(|l| cholesky_apply(&l, b))
}

/// Inverts a symmetric positive definite `n × n` matrix (row-major, f64) in place by
/// Gauss–Jordan elimination without pivoting (stable for such matrices), rows updated in
/// parallel; `None` if a pivot is not positive (the matrix is not positive definite).
pub(crate) fn spd_inverse(a: &mut [f64], n: usize) -> Option<()> {
    assert_eq!(a.len(), n * n, "spd_inverse: {} entries for n = {n}", a.len());
    let mut pivot_row = vec![0f64; n];
    for k in 0..n {
        let p = a[k * n + k];
        if p <= 0.0 || !p.is_finite() {
            return None;
        }
        let inv = 1.0 / p;
        for (j, x) in a[k * n..(k + 1) * n].iter_mut().enumerate() {
            *x = if j == k { inv } else { *x * inv };
        }
        pivot_row.copy_from_slice(&a[k * n..(k + 1) * n]);
        // with this entry, `row_i -= f * pivot_row` also leaves `-f / p` in column k
        pivot_row[k] = 1.0 + inv;
        a.par_chunks_mut(n).enumerate().filter(|(i, _)| *i != k).for_each(|(_, row)| {
            let f = row[k];
            if f != 0.0 {
                for (x, &y) in row.iter_mut().zip(&pivot_row) {
                    *x -= f * y;
                }
            }
        });
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spd_inverse_inverts() {
        let n = 7;
        // A = MᵀM + I
        let m: Vec<f64> = (0..n * n).map(|i| ((i * 37 % 11) as f64 - 5.0) / 3.0).collect();
        let mut a = vec![0f64; n * n];
        for i in 0..n {
            for j in 0..n {
                a[i * n + j] = (0..n).map(|k| m[k * n + i] * m[k * n + j]).sum::<f64>() + f64::from(i == j);
            }
        }
        let mut inv = a.clone();
        spd_inverse(&mut inv, n).unwrap();
        for i in 0..n {
            for j in 0..n {
                let x: f64 = (0..n).map(|k| a[i * n + k] * inv[k * n + j]).sum();
                assert!((x - f64::from(i == j)).abs() < 1e-9, "({i}, {j}): {x}");
            }
        }
        let mut bad = vec![1.0, 2.0, 2.0, 1.0];
        assert!(spd_inverse(&mut bad, 2).is_none());
    }

    #[test]
    fn gram_is_the_same_bit_for_bit_on_any_thread_count() {
        let (rows, f) = (20_000, 16);
        let mut rng = warmstart_core::Rng::new(3);
        let y: Vec<f32> = (0..rows * f).map(|_| rng.normal_f32()).collect();
        let on = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| gram(&y, f))
        };
        let first = on(1);
        for threads in [2, 3, 4, 2, 4] {
            assert_eq!(on(threads), first, "{threads} threads");
        }
        // and it is YᵀY
        for (i, j) in [(0, 0), (3, 7), (15, 2)] {
            let want: f64 = y.chunks_exact(f).map(|r| r[i] as f64 * r[j] as f64).sum();
            assert!((first[i * f + j] as f64 - want).abs() < 1e-2 * want.abs().max(1.0), "({i}, {j})");
        }
    }

    #[test]
    fn kernels_agree_and_cholesky_solves() {
        let x = cholesky_solve(&[4.0, 1.0, 1.0, 3.0], &[1.0, 2.0]).unwrap();
        assert!((x[0] - 1.0 / 11.0).abs() < 1e-6 && (x[1] - 7.0 / 11.0).abs() < 1e-6);
        assert!(cholesky_solve(&[0.0, 1.0, 1.0, 0.0], &[1.0, 1.0]).is_none());
        assert_eq!(dot(&[1.0; 19], &[2.0; 19]), 38.0);
        let a: Vec<f32> = (0..67).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..67).map(|i| (i as f32 * 0.11).cos()).collect();
        let plain = dot_k::<false>(&a, &b);
        let fused = simd!(dot_k::<true>(&a, &b), dot_k::<false>(&a, &b));
        assert!((plain - fused).abs() < 1e-5);
        let g = gram(&[1.0, 2.0, 3.0, 4.0], 2);
        assert_eq!(g, vec![10.0, 14.0, 14.0, 20.0]);
    }
}
