//! One training step of the autoencoder written out by hand: the forward pass, the gradient
//! of the multinomial log-likelihood and Adam, into buffers that live as long as training.
//! The output layer spans the whole catalog, so a tensor library's fresh `batch × items`
//! tensor per operation (a dozen per step, forward and backward) cost more in page clearing
//! than the three matrix products themselves.

use rayon::prelude::*;

/// `dst (m×n) = a (m×k) · b (k×n)`, each operand given with its row and column strides
/// (a transposed operand is the same slice with the strides swapped).
#[allow(clippy::too_many_arguments)]
fn matmul(
    dst: &mut [f32],
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    a_rs: usize,
    a_cs: usize,
    b: &[f32],
    b_rs: usize,
    b_cs: usize,
) {
    assert!(dst.len() >= m * n, "matmul destination too small");
    if m == 0 || n == 0 {
        return;
    }
    assert!(k == 0 || (m - 1) * a_rs + (k - 1) * a_cs < a.len(), "matmul left operand too small");
    assert!(k == 0 || (k - 1) * b_rs + (n - 1) * b_cs < b.len(), "matmul right operand too small");
    // SAFETY: the asserts above keep every index the product reads or writes inside the slices
    // (the destination is row-major m×n, the operands' last elements are in bounds), and the
    // destination does not alias the operands (it is borrowed mutably).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.as_ptr(),
            a_cs as isize,
            a_rs as isize,
            b.as_ptr(),
            b_cs as isize,
            b_rs as isize,
            0.0f32,
            1.0f32,
            false,
            false,
            false,
            gemm::Parallelism::Rayon(0),
        )
    }
}

/// A training row: the corrupted input (items, normalised weights) and the items to
/// reconstruct with their values.
pub(super) type Row = (Vec<(u32, f32)>, Vec<(u32, f32)>);

/// Adam's moments of one parameter.
struct Moments {
    first: Vec<f32>,
    second: Vec<f32>,
}

/// Weights, gradients, Adam's state and the step's buffers.
pub(super) struct Trainer {
    pub(super) n: usize,
    pub(super) h: usize,
    /// `n × h`, `h`, `h × n`, `n`.
    pub(super) params: [Vec<f32>; 4],
    grads: [Vec<f32>; 4],
    moments: Vec<Moments>,
    step: i32,
    lr: f32,
    hidden: Vec<f32>,
    logits: Vec<f32>,
    grad_hidden: Vec<f32>,
}

const BETA1: f32 = 0.9;
const BETA2: f32 = 0.999;
const EPS: f32 = 1e-8;

impl Trainer {
    pub(super) fn new(params: [Vec<f32>; 4], n: usize, h: usize, lr: f32) -> Trainer {
        let grads = params.clone().map(|p| vec![0f32; p.len()]);
        let moments =
            params.iter().map(|p| Moments { first: vec![0f32; p.len()], second: vec![0f32; p.len()] }).collect();
        Trainer {
            n,
            h,
            params,
            grads,
            moments,
            step: 0,
            lr,
            hidden: Vec::new(),
            logits: Vec::new(),
            grad_hidden: Vec::new(),
        }
    }

    /// One Adam step on a batch: each row is its (normalised) input items and the items it
    /// should reconstruct with their values. Returns the batch's mean negative log-likelihood.
    pub(super) fn step(&mut self, rows: &[Row]) -> f64 {
        let (n, h, b) = (self.n, self.h, rows.len());
        if b == 0 {
            return 0.0;
        }
        let [w1, b1, w2, b2] = &self.params;
        // encoder: tanh(Σ w·W1[i] + b1)
        self.hidden.clear();
        for (input, _) in rows {
            let start = self.hidden.len();
            self.hidden.extend_from_slice(b1);
            let out = &mut self.hidden[start..];
            for &(i, w) in input {
                for (o, x) in out.iter_mut().zip(&w1[i as usize * h..(i as usize + 1) * h]) {
                    *o += w * x;
                }
            }
            out.iter_mut().for_each(|x| *x = x.tanh());
        }
        // decoder logits, then each row's softmax gradient in place: p·Σt − t, over the batch
        self.logits.resize(b * n, 0.0);
        matmul(&mut self.logits, b, n, h, &self.hidden, h, 1, w2, n, 1);
        let scale = 1.0 / b as f32;
        let loss: f64 = self
            .logits
            .par_chunks_mut(n)
            .zip(rows.par_iter())
            .map(|(row, (_, target))| {
                let mut max = f32::NEG_INFINITY;
                for (x, bias) in row.iter_mut().zip(b2.iter()) {
                    *x += bias;
                    max = max.max(*x);
                }
                let total: f32 = target.iter().map(|t| t.1).sum();
                let picked: f64 = target.iter().map(|&(j, t)| (t * row[j as usize]) as f64).sum();
                let mut sum = 0f64;
                for x in row.iter_mut() {
                    *x = (*x - max).exp();
                    sum += *x as f64;
                }
                let lse = max as f64 + sum.ln();
                let k = (total as f64 / sum) as f32 * scale;
                row.iter_mut().for_each(|x| *x *= k);
                for &(j, t) in target {
                    row[j as usize] -= t * scale;
                }
                total as f64 * lse - picked
            })
            .sum();
        let g = &self.logits;
        // decoder gradients: hᵀ·G and the column sums of G
        let [gw1, gb1, gw2, gb2] = &mut self.grads;
        matmul(gw2, h, n, b, &self.hidden, 1, h, g, n, 1);
        gb2.fill(0.0);
        for row in g.chunks(n) {
            for (o, x) in gb2.iter_mut().zip(row) {
                *o += x;
            }
        }
        // back through the decoder and tanh: G·W2ᵀ ⊙ (1 − h²)
        self.grad_hidden.resize(b * h, 0.0);
        matmul(&mut self.grad_hidden, b, h, n, g, n, 1, w2, 1, n);
        for (gh, hv) in self.grad_hidden.iter_mut().zip(&self.hidden) {
            *gh *= 1.0 - hv * hv;
        }
        // encoder gradients: only the input items' rows are non-zero
        gb1.fill(0.0);
        for (r, (input, _)) in rows.iter().enumerate() {
            let gh = &self.grad_hidden[r * h..(r + 1) * h];
            for (o, x) in gb1.iter_mut().zip(gh) {
                *o += x;
            }
            for &(i, w) in input {
                for (o, x) in gw1[i as usize * h..(i as usize + 1) * h].iter_mut().zip(gh) {
                    *o += w * x;
                }
            }
        }
        self.adam();
        // the encoder's gradient is cleared where it was written
        let gw1 = &mut self.grads[0];
        for (input, _) in rows {
            for &(i, _) in input {
                gw1[i as usize * h..(i as usize + 1) * h].fill(0.0);
            }
        }
        loss / b as f64
    }

    /// Adam (no weight decay) on every parameter, as PyTorch's and candle's compute it.
    fn adam(&mut self) {
        self.step += 1;
        let (c1, c2) = (1.0 - BETA1.powi(self.step), 1.0 - BETA2.powi(self.step));
        let lr = self.lr;
        for ((p, g), m) in self.params.iter_mut().zip(&self.grads).zip(&mut self.moments) {
            p.par_chunks_mut(4096)
                .zip(g.par_chunks(4096))
                .zip(m.first.par_chunks_mut(4096).zip(m.second.par_chunks_mut(4096)))
                .for_each(|((p, g), (m1, m2))| {
                    for (((p, g), m1), m2) in p.iter_mut().zip(g).zip(m1.iter_mut()).zip(m2.iter_mut()) {
                        *m1 = BETA1 * *m1 + (1.0 - BETA1) * g;
                        *m2 = BETA2 * *m2 + (1.0 - BETA2) * g * g;
                        *p -= lr * (*m1 / c1) / ((*m2 / c2).sqrt() + EPS);
                    }
                });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-written gradient against finite differences of the loss.
    #[test]
    fn gradient_matches_finite_differences() {
        let (n, h) = (5, 3);
        let mut rng = warmstart_core::Rng::new(7);
        let mut init = |len: usize| (0..len).map(|_| rng.normal_f32() * 0.5).collect::<Vec<f32>>();
        let params = [init(n * h), init(h), init(h * n), init(n)];
        let rows =
            vec![(vec![(0u32, 0.6f32), (2, 0.8)], vec![(1u32, 1.0f32), (3, 2.0)]), (vec![(4, 1.0)], vec![(0, 1.0)])];
        let loss_at = |params: &[Vec<f32>; 4]| {
            // lr 0: the step leaves the weights and reports the loss
            let mut t = Trainer::new(params.clone(), n, h, 0.0);
            t.step(&rows)
        };
        let mut t = Trainer::new(params.clone(), n, h, 0.0);
        let base = t.step(&rows);
        // the step's gradients; the encoder's rows were cleared after the step, so they are
        // read back from its first moment (`(1 − β₁)·g` after one step)
        let mut analytic = t.grads.to_vec();
        analytic[0] = t.moments[0].first.iter().map(|m| m / (1.0 - BETA1)).collect();
        for (p, grad) in analytic.iter().enumerate() {
            for (k, &a) in grad.iter().enumerate() {
                let eps = 1e-3f32;
                let mut up = params.clone();
                up[p][k] += eps;
                let mut down = params.clone();
                down[p][k] -= eps;
                let numeric = (loss_at(&up) - loss_at(&down)) / (2.0 * eps as f64);
                assert!((numeric - a as f64).abs() < 2e-3, "parameter {p}[{k}]: {a} vs {numeric}");
            }
        }
        assert!(base.is_finite() && base > 0.0);
    }
}
