//! Training losses of the neural models (two-tower, GraphSAGE): binary cross-entropy with
//! logits, and the in-batch sampled softmax with logQ correction as one candle op each way.

use candle_core::Tensor;
use warmstart_core::ItemId;

/// Binary cross-entropy with logits: positives (`B`) labelled 1, negatives (`B × k`) 0;
/// the mean over all `B · (1 + k)` terms.
pub fn bce(pos: &Tensor, neg: &Tensor) -> candle_core::Result<Tensor> {
    // −log σ(x) = softplus(−x); −log(1 − σ(x)) = softplus(x)
    let softplus = |x: &Tensor| -> candle_core::Result<Tensor> {
        // log(1 + e^x) computed stably as max(x, 0) + log(1 + e^{−|x|})
        let relu = x.relu()?;
        relu + ((x.abs()? * -1.0)?.exp()? + 1.0)?.log()?
    };
    let n = (pos.elem_count() + neg.elem_count()) as f64;
    let total = (softplus(&(pos * -1.0)?)?.sum_all()? + softplus(neg)?.sum_all()?)?;
    total / n
}

/// Sampled softmax with logQ correction: row `b` of `logits` (`B × C`, user `b` against
/// the columns' items, `C ≥ B`) has its own target in column `b`; `columns[j]` is column
/// `j`'s item and the log of its expected count among the sampled columns, subtracted from
/// its logit (Yi et al. 2019); other columns holding the row's target item are masked (they
/// are not negatives).
pub fn sampled_softmax(logits: &Tensor, targets: &[ItemId], columns: &[(ItemId, f32)]) -> candle_core::Result<Tensor> {
    let (n, m) = logits.dims2()?;
    if n != targets.len() || m != columns.len() || m < n {
        candle_core::bail!(
            "sampled softmax: {n} × {m} logits for {} targets and {} columns",
            targets.len(),
            columns.len()
        );
    }
    logits.contiguous()?.apply_op1(SampledSoftmax { targets: targets.to_vec(), columns: columns.to_vec() })
}

/// The corrected softmax cross-entropy as one op each way (candle's log-softmax, gather and
/// mean are a dozen ops over the logits and their gradients).
struct SampledSoftmax {
    targets: Vec<ItemId>,
    columns: Vec<(ItemId, f32)>,
}

impl SampledSoftmax {
    /// Row `r`: writes `exp(z − max)` of its corrected logits `z` into `out` and returns
    /// (`z_r − max`, the sum of `out`).
    fn row(&self, r: usize, logits: &[f32], out: &mut [f32]) -> (f32, f32) {
        for (c, ((item, logq), z)) in self.columns.iter().zip(out.iter_mut()).enumerate() {
            *z = logits[c] + if r != c && self.targets[r] == *item { -1e9 } else { -logq };
        }
        let max = out.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let own = out[r] - max;
        let mut sum = 0f32;
        for z in out.iter_mut() {
            *z = (*z - max).exp();
            sum += *z;
        }
        (own, sum)
    }
}

impl candle_core::CustomOp1 for SampledSoftmax {
    fn name(&self) -> &'static str {
        "sampled-softmax"
    }

    fn cpu_fwd(
        &self,
        storage: &candle_core::CpuStorage,
        layout: &candle_core::Layout,
    ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
        use rayon::prelude::*;
        let (n, m) = layout.shape().dims2()?;
        let x = crate::nn::f32_values(storage, layout, self.name())?;
        // per-row losses in order, summed in order: deterministic whatever the threads
        let losses: Vec<f64> = (0..n)
            .into_par_iter()
            .map_init(
                || vec![0f32; m],
                |z, r| {
                    let (own, sum) = self.row(r, &x[r * m..(r + 1) * m], z);
                    (sum.ln() - own) as f64
                },
            )
            .collect();
        let total: f64 = losses.iter().sum();
        Ok((candle_core::CpuStorage::F32(vec![(total / n.max(1) as f64) as f32]), ().into()))
    }

    fn bwd(&self, logits: &Tensor, _out: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        use rayon::prelude::*;
        let (n, m) = logits.dims2()?;
        let x = logits.flatten_all()?.to_vec1::<f32>()?;
        let scale = grad.to_scalar::<f32>()? / n.max(1) as f32;
        let mut d = vec![0f32; n * m];
        d.par_chunks_mut(m.max(1)).enumerate().for_each(|(r, row)| {
            let (_, sum) = self.row(r, &x[r * m..(r + 1) * m], row);
            let k = scale / sum;
            row.iter_mut().for_each(|p| *p *= k);
            row[r] -= scale;
        });
        Tensor::from_vec(d, (n, m), logits.device()).map(Some)
    }
}
