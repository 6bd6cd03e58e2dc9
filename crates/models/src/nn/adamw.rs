//! AdamW in one pass per parameter.

use candle_core::{Tensor, Var};

/// AdamW with decoupled weight decay, as `candle_nn::AdamW` computes it, in one pass over each
/// parameter: candle's version runs a dozen tensor ops per parameter and step (each allocating
/// and, for small parameters, costing more to dispatch than to compute).
pub(crate) struct FusedAdamW {
    /// Each parameter with its first and second moments.
    vars: Vec<(Var, Vec<f32>, Vec<f32>)>,
    params: candle_nn::ParamsAdamW,
    step_t: i32,
}

impl candle_nn::Optimizer for FusedAdamW {
    type Config = candle_nn::ParamsAdamW;

    fn new(vars: Vec<Var>, params: candle_nn::ParamsAdamW) -> candle_core::Result<Self> {
        let vars = vars
            .into_iter()
            .filter(|v| v.dtype().is_float())
            .map(|v| {
                if v.dtype() != candle_core::DType::F32 {
                    candle_core::bail!("AdamW: f32 parameters only, not {:?}", v.dtype());
                }
                let n = v.elem_count();
                Ok((v, vec![0f32; n], vec![0f32; n]))
            })
            .collect::<candle_core::Result<_>>()?;
        Ok(FusedAdamW { vars, params, step_t: 0 })
    }

    fn learning_rate(&self) -> f64 {
        self.params.lr
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.params.lr = lr
    }

    fn step(&mut self, grads: &candle_core::backprop::GradStore) -> candle_core::Result<()> {
        use rayon::prelude::*;
        self.step_t += 1;
        let p = &self.params;
        let (b1, b2) = (p.beta1 as f32, p.beta2 as f32);
        let scale_m = (1.0 / (1.0 - p.beta1.powi(self.step_t))) as f32;
        let scale_v = (1.0 / (1.0 - p.beta2.powi(self.step_t))) as f32;
        let (lr, eps) = (p.lr as f32, p.eps as f32);
        let decay = (1.0 - p.lr * p.weight_decay) as f32;
        for (var, m, v) in &mut self.vars {
            let Some(g) = grads.get(var) else { continue };
            let g = g.flatten_all()?.to_vec1::<f32>()?;
            let mut theta = var.flatten_all()?.to_vec1::<f32>()?;
            if g.len() != theta.len() {
                candle_core::bail!("AdamW: a gradient of {} values for {}", g.len(), theta.len());
            }
            const CHUNK: usize = 1 << 14;
            theta
                .par_chunks_mut(CHUNK)
                .zip(m.par_chunks_mut(CHUNK))
                .zip(v.par_chunks_mut(CHUNK))
                .zip(g.par_chunks(CHUNK))
                .for_each(|(((theta, m), v), g)| {
                    for (((t, m), v), g) in theta.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()).zip(g) {
                        *m = b1 * *m + (1.0 - b1) * g;
                        *v = b2 * *v + (1.0 - b2) * g * g;
                        *t = *t * decay - lr * (*m * scale_m) / ((*v * scale_v).sqrt() + eps);
                    }
                });
            var.set(&Tensor::from_vec(theta, var.shape(), var.device())?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// The fused AdamW takes candle's AdamW steps.
    #[test]
    fn fused_adamw_matches_candle() {
        let dev = &Device::Cpu;
        let close = |a: &Tensor, b: &Tensor| {
            let d = (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(d < 1e-5, "{a} vs {b}");
        };
        {
            use candle_nn::Optimizer;
            let start: Vec<f32> = (0..12).map(|i| (i as f32 * 0.9).cos()).collect();
            let (a, c) =
                (Var::from_vec(start.clone(), (3, 4), dev).unwrap(), Var::from_vec(start, (3, 4), dev).unwrap());
            let params = candle_nn::ParamsAdamW { lr: 0.05, weight_decay: 0.1, ..Default::default() };
            let mut ours = FusedAdamW::new(vec![a.clone()], params.clone()).unwrap();
            let mut theirs = candle_nn::AdamW::new(vec![c.clone()], params).unwrap();
            let target = Tensor::from_vec((0..12).map(|i| i as f32 * 0.1).collect::<Vec<_>>(), (3, 4), dev).unwrap();
            for step in 0..5 {
                ours.set_learning_rate(0.05 / (step + 1) as f64);
                theirs.set_learning_rate(0.05 / (step + 1) as f64);
                ours.backward_step(&(a.as_tensor() - &target).unwrap().sqr().unwrap().sum_all().unwrap()).unwrap();
                theirs.backward_step(&(c.as_tensor() - &target).unwrap().sqr().unwrap().sum_all().unwrap()).unwrap();
            }
            close(a.as_tensor(), c.as_tensor());
        }
    }
}
