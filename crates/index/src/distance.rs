//! Dot products and normalisation, the only arithmetic on the hot path.
//!
//! [`dot`] is the single entry point: it checks once per call (a cached atomic load) whether the
//! CPU has AVX2 and FMA and then runs the 8-lane FMA kernel; otherwise a portable loop with eight
//! independent accumulators that LLVM vectorises with whatever the target baseline offers.

/// Inner product of two equally long slices.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the two features the function is compiled for were detected just above.
            return unsafe { dot_avx2_fma(a, b) };
        }
    }
    dot_portable(a, b)
}

/// A dot-product kernel the search code is instantiated with, so the kernel inlines into the
/// hot loops. Only [`dispatch`] picks one.
pub(crate) trait Kernel {
    fn dot(a: &[f32], b: &[f32]) -> f32;
}

/// Portable kernel (any CPU).
pub(crate) struct Portable;
impl Kernel for Portable {
    #[inline(always)]
    fn dot(a: &[f32], b: &[f32]) -> f32 {
        dot_portable(a, b)
    }
}

/// AVX2/FMA kernel; only ever instantiated by [`dispatch`] after it detected both features.
#[cfg(target_arch = "x86_64")]
pub(crate) struct Avx2Fma;
#[cfg(target_arch = "x86_64")]
impl Kernel for Avx2Fma {
    #[inline(always)]
    fn dot(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: code using this kernel runs only under `dispatch`'s AVX2/FMA check.
        unsafe { dot_avx2_fma(a, b) }
    }
}

/// Work that is generic over the dot-product kernel.
pub(crate) trait WithKernel {
    type Out;
    fn run<K: Kernel>(self) -> Self::Out;
}

/// Runs `work` with the best kernel for this CPU: the one place that checks CPU features for
/// the search code. The AVX2 path is compiled with AVX2/FMA enabled so the kernel and the
/// search loop around it inline into one function.
#[inline]
pub(crate) fn dispatch<W: WithKernel>(work: W) -> W::Out {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: both features were just detected.
            return unsafe { run_avx2_fma(work) };
        }
    }
    work.run::<Portable>()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn run_avx2_fma<W: WithKernel>(work: W) -> W::Out {
    work.run::<Avx2Fma>()
}

/// Eight independent partial sums so the loop is not one long dependency chain and vectorises.
#[inline]
fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let ca = a.chunks_exact(8);
    let cb = b.chunks_exact(8);
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    (acc[0] + acc[4]) + (acc[1] + acc[5]) + (acc[2] + acc[6]) + (acc[3] + acc[7]) + tail
}

/// AVX2/FMA kernel: four 8-lane accumulators (32 floats per step), then an 8-float step, then
/// a scalar tail.
///
/// # Safety
/// The CPU must support AVX2 and FMA; only [`dot`] calls this, after checking.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn dot_avx2_fma(a: &[f32], b: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let n = a.len();
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut s0 = _mm256_setzero_ps();
    let mut s1 = _mm256_setzero_ps();
    let mut s2 = _mm256_setzero_ps();
    let mut s3 = _mm256_setzero_ps();
    let mut i = 0;
    // SAFETY (all loads): every index read is below `n`, the common length of both slices.
    while i + 32 <= n {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i + 8)), _mm256_loadu_ps(pb.add(i + 8)), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i + 16)), _mm256_loadu_ps(pb.add(i + 16)), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i + 24)), _mm256_loadu_ps(pb.add(i + 24)), s3);
        i += 32;
    }
    while i + 8 <= n {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), s0);
        i += 8;
    }
    let s = _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3));
    let hi = _mm256_extractf128_ps(s, 1);
    let lo = _mm256_castps256_ps128(s);
    let q = _mm_add_ps(hi, lo);
    let q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    let q = _mm_add_ss(q, _mm_shuffle_ps(q, q, 1));
    let mut total = _mm_cvtss_f32(q);
    while i < n {
        total += *pa.add(i) * *pb.add(i);
        i += 1;
    }
    total
}

/// Hints the CPU to start loading the first cache lines of `v`.
#[inline(always)]
pub fn prefetch(v: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let p = v.as_ptr() as *const i8;
        // SAFETY: prefetch never dereferences or faults; SSE is part of the x86_64 baseline.
        #[allow(unused_unsafe)]
        unsafe {
            _mm_prefetch(p, _MM_HINT_T0);
            if v.len() > 16 {
                _mm_prefetch(p.wrapping_add(64), _MM_HINT_T0);
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = v;
}

/// Euclidean norm.
pub fn norm(v: &[f32]) -> f32 {
    dot(v, v).sqrt()
}

/// Scales `v` to unit length in place; returns false (and leaves `v` alone) for a zero vector.
pub fn normalize(v: &mut [f32]) -> bool {
    let n = norm(v);
    if n > 0.0 && n.is_finite() {
        let inv = 1.0 / n;
        v.iter_mut().for_each(|x| *x *= inv);
        true
    } else {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_agree_with_naive_sum() {
        for n in [0usize, 1, 7, 8, 9, 31, 32, 33, 64, 100, 384] {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
            let naive: f64 = a.iter().zip(&b).map(|(x, y)| (*x as f64) * (*y as f64)).sum();
            assert!((dot(&a, &b) as f64 - naive).abs() < 1e-4, "n={n}");
            assert!((dot_portable(&a, &b) as f64 - naive).abs() < 1e-4, "n={n}");
        }
    }

    #[test]
    fn normalize_zero_is_refused() {
        let mut z = [0.0f32; 4];
        assert!(!normalize(&mut z));
        let mut v = [3.0f32, 4.0];
        assert!(normalize(&mut v));
        assert!((v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6);
    }
}
