//! Principal component analysis by randomized subspace iteration (Halko et al. 2011): the
//! top `k` directions of the centred data without forming the `dim × dim` covariance.

use warmstart_core::Rng;

use crate::{rows, Error, Result};

/// A projection onto the leading principal components.
#[derive(Debug, Clone, PartialEq)]
pub struct Pca {
    /// Column means subtracted before projecting.
    pub mean: Vec<f32>,
    /// Components (`k × dim`, row-major, orthonormal), by decreasing variance.
    pub components: Vec<f32>,
    /// Variance along each component.
    pub variance: Vec<f64>,
    /// Share of the total variance each component explains.
    pub explained_ratio: Vec<f64>,
    /// Input dimension.
    pub dim: usize,
}

impl Pca {
    /// Fits `k` components to the rows of `data` (`n × dim`); `iterations` of subspace
    /// iteration (6–10 is plenty for a visible spectrum gap); seeded.
    pub fn fit(data: &[f32], dim: usize, k: usize, iterations: usize, seed: u64) -> Result<Pca> {
        let n = rows(data, dim)?;
        if k == 0 || k > dim.min(n) {
            return Err(Error::InvalidParameter {
                name: "components",
                value: k.to_string(),
                rule: format!("must be in 1..={} (rows and dimension)", dim.min(n)),
            });
        }
        let mut mean = vec![0f64; dim];
        for r in data.chunks(dim) {
            for (m, x) in mean.iter_mut().zip(r) {
                *m += *x as f64;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);
        let centred: Vec<f64> =
            data.chunks(dim).flat_map(|r| r.iter().zip(&mean).map(|(x, m)| *x as f64 - m)).collect();
        let total: f64 = centred.iter().map(|x| x * x).sum::<f64>() / n as f64;
        // oversampled block for a better top-k
        let b = (k + 8).min(dim.min(n));
        let mut rng = Rng::new(seed);
        let mut v: Vec<f64> = (0..dim * b).map(|_| rng.normal_f32() as f64).collect(); // dim × b
        orthonormalize(&mut v, dim, b);
        for _ in 0..iterations.max(1) {
            let xv = mul_x_v(&centred, n, dim, &v, b); // n × b
            v = mul_xt_y(&centred, n, dim, &xv, b); // dim × b
            orthonormalize(&mut v, dim, b);
        }
        // Rayleigh–Ritz: eigen-decompose the small b × b matrix (XV)ᵀ(XV) by Jacobi
        let xv = mul_x_v(&centred, n, dim, &v, b);
        let mut small = vec![0f64; b * b];
        for i in 0..b {
            for j in 0..b {
                small[i * b + j] = (0..n).map(|r| xv[r * b + i] * xv[r * b + j]).sum::<f64>() / n as f64;
            }
        }
        let (values, vectors) = jacobi_eigen(small, b);
        let mut order: Vec<usize> = (0..b).collect();
        order.sort_by(|&x, &y| values[y].total_cmp(&values[x]));
        let mut components = Vec::with_capacity(k * dim);
        let mut variance = Vec::with_capacity(k);
        for &c in order.iter().take(k) {
            // component = V · eigenvector c
            for d in 0..dim {
                components.push((0..b).map(|j| v[d * b + j] * vectors[j * b + c]).sum::<f64>() as f32);
            }
            variance.push(values[c].max(0.0));
        }
        let explained_ratio = variance.iter().map(|x| if total > 0.0 { x / total } else { 0.0 }).collect();
        Ok(Pca { mean: mean.iter().map(|m| *m as f32).collect(), components, variance, explained_ratio, dim })
    }

    /// Projects rows (`n × dim`) onto the components (`n × k`).
    pub fn transform(&self, data: &[f32]) -> Result<Vec<f32>> {
        rows(data, self.dim)?;
        let k = self.variance.len();
        let mut out = Vec::with_capacity(data.len() / self.dim * k);
        for r in data.chunks(self.dim) {
            for c in 0..k {
                let comp = &self.components[c * self.dim..(c + 1) * self.dim];
                out.push(r.iter().zip(&self.mean).zip(comp).map(|((x, m), w)| (x - m) * w).sum());
            }
        }
        Ok(out)
    }
}

/// `X (n × dim) · V (dim × b)`.
fn mul_x_v(x: &[f64], n: usize, dim: usize, v: &[f64], b: usize) -> Vec<f64> {
    let mut out = vec![0f64; n * b];
    for r in 0..n {
        let row = &x[r * dim..(r + 1) * dim];
        let o = &mut out[r * b..(r + 1) * b];
        for (d, xv) in row.iter().enumerate() {
            if *xv != 0.0 {
                for (oj, vj) in o.iter_mut().zip(&v[d * b..(d + 1) * b]) {
                    *oj += xv * vj;
                }
            }
        }
    }
    out
}

/// `Xᵀ (dim × n) · Y (n × b)`.
fn mul_xt_y(x: &[f64], n: usize, dim: usize, y: &[f64], b: usize) -> Vec<f64> {
    let mut out = vec![0f64; dim * b];
    for r in 0..n {
        let yr = &y[r * b..(r + 1) * b];
        for (d, xv) in x[r * dim..(r + 1) * dim].iter().enumerate() {
            if *xv != 0.0 {
                for (oj, yj) in out[d * b..(d + 1) * b].iter_mut().zip(yr) {
                    *oj += xv * yj;
                }
            }
        }
    }
    out
}

/// Modified Gram–Schmidt on the `b` columns of a `rows × b` matrix.
fn orthonormalize(m: &mut [f64], rows: usize, b: usize) {
    for j in 0..b {
        for p in 0..j {
            let dot: f64 = (0..rows).map(|r| m[r * b + j] * m[r * b + p]).sum();
            for r in 0..rows {
                m[r * b + j] -= dot * m[r * b + p];
            }
        }
        let norm = (0..rows).map(|r| m[r * b + j] * m[r * b + j]).sum::<f64>().sqrt();
        for r in 0..rows {
            m[r * b + j] = if norm > 1e-300 { m[r * b + j] / norm } else { 0.0 };
        }
    }
}

/// Eigenvalues and eigenvectors (columns) of a symmetric `b × b` matrix, cyclic Jacobi.
fn jacobi_eigen(mut a: Vec<f64>, b: usize) -> (Vec<f64>, Vec<f64>) {
    let mut v = vec![0f64; b * b];
    for i in 0..b {
        v[i * b + i] = 1.0;
    }
    for _sweep in 0..100 {
        let off: f64 = (0..b)
            .flat_map(|i| (0..b).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * b + j].powi(2))
            .sum();
        if off < 1e-24 {
            break;
        }
        for p in 0..b {
            for q in p + 1..b {
                let apq = a[p * b + q];
                if apq.abs() < 1e-300 {
                    continue;
                }
                let theta = (a[q * b + q] - a[p * b + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..b {
                    let (akp, akq) = (a[k * b + p], a[k * b + q]);
                    a[k * b + p] = c * akp - s * akq;
                    a[k * b + q] = s * akp + c * akq;
                }
                for k in 0..b {
                    let (apk, aqk) = (a[p * b + k], a[q * b + k]);
                    a[p * b + k] = c * apk - s * aqk;
                    a[q * b + k] = s * apk + c * aqk;
                }
                for k in 0..b {
                    let (vkp, vkq) = (v[k * b + p], v[k * b + q]);
                    v[k * b + p] = c * vkp - s * vkq;
                    v[k * b + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..b).map(|i| a[i * b + i]).collect(), v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_the_dominant_directions() {
        // 300 points in 5-D: variance 9 along (1,1,0,0,0)/√2, 1 along e3, 0.01 elsewhere
        let mut rng = Rng::new(9);
        let s = std::f32::consts::FRAC_1_SQRT_2;
        let mut data = Vec::new();
        for _ in 0..300 {
            let (a, b) = (rng.normal_f32() * 3.0, rng.normal_f32());
            let noise: Vec<f32> = (0..5).map(|_| rng.normal_f32() * 0.1).collect();
            data.extend([a * s + noise[0] + 5.0, a * s + noise[1], b + noise[2], noise[3], noise[4]]);
        }
        let p = Pca::fit(&data, 5, 2, 8, 1).unwrap();
        let c0 = &p.components[0..5];
        assert!((c0[0].abs() - s).abs() < 0.05 && (c0[1].abs() - s).abs() < 0.05, "{c0:?}");
        assert!(p.components[7].abs() > 0.95, "second component along e3: {:?}", &p.components[5..10]);
        assert!(p.explained_ratio[0] > 0.85 && p.explained_ratio[0] < 0.95, "{:?}", p.explained_ratio);
        assert!((p.variance[0] - 9.0).abs() < 2.0 && (p.variance[1] - 1.0).abs() < 0.3, "{:?}", p.variance);
        let z = p.transform(&data).unwrap();
        assert_eq!(z.len(), 600);
        assert!(Pca::fit(&data, 5, 6, 8, 1).is_err());
    }
}
