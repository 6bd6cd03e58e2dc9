//! Pieces shared by the neural models (two-tower, GraphSAGE): dense layers, L2
//! normalisation, seeded parameter initialisation, best-epoch snapshots and the error
//! conversion from candle.

use std::collections::HashMap;

use candle_core::{Device, Tensor, Var, D};
use candle_nn::VarMap;
use warmstart_core::Rng;

use crate::{Error, Result};

/// `x · w + b`.
pub(crate) fn dense(x: &Tensor, (w, b): &(Tensor, Tensor)) -> candle_core::Result<Tensor> {
    x.matmul(w)?.broadcast_add(b)
}

/// The values of a custom op's input, which must be contiguous f32.
fn f32_values<'a>(
    storage: &'a candle_core::CpuStorage,
    layout: &candle_core::Layout,
    op: &str,
) -> candle_core::Result<&'a [f32]> {
    match (storage, layout.contiguous_offsets()) {
        (candle_core::CpuStorage::F32(x), Some((start, end))) => Ok(&x[start..end]),
        _ => candle_core::bail!("{op} needs contiguous f32 values"),
    }
}

/// `x · w` for a constant `x` (data, not parameters): the backward pass computes only `w`'s
/// gradient, `xᵀ · grad` (candle's matmul would also compute the unused gradient of `x`, a
/// second product as large as the forward one).
pub(crate) fn constant_matmul(x: Tensor, w: &Tensor) -> candle_core::Result<Tensor> {
    w.apply_op1(ConstantMatmul(x))
}

struct ConstantMatmul(Tensor);

impl candle_core::CustomOp1 for ConstantMatmul {
    fn name(&self) -> &'static str {
        "constant-matmul"
    }

    fn cpu_fwd(
        &self,
        storage: &candle_core::CpuStorage,
        layout: &candle_core::Layout,
    ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
        let w = f32_values(storage, layout, self.name())?;
        let out = self.0.matmul(&Tensor::from_slice(w, layout.shape(), &Device::Cpu)?)?;
        let shape = out.shape().clone();
        Ok((candle_core::CpuStorage::F32(out.flatten_all()?.to_vec1::<f32>()?), shape))
    }

    fn bwd(&self, _w: &Tensor, _out: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(self.0.t()?.matmul(grad)?))
    }
}

/// A sparse matrix in CSR form whose rows weigh rows of another tensor: row `r` stands for
/// `Σ vals[k] · src[cols[k]]` over `k` in `offsets[r]..offsets[r + 1]`.
#[derive(Debug, Clone, Default)]
pub(crate) struct SparseRows {
    offsets: Vec<usize>,
    cols: Vec<u32>,
    vals: Vec<f32>,
}

impl SparseRows {
    /// Appends a row.
    pub(crate) fn push(&mut self, entries: impl IntoIterator<Item = (u32, f32)>) {
        if self.offsets.is_empty() {
            self.offsets.push(0);
        }
        for (c, v) in entries {
            self.cols.push(c);
            self.vals.push(v);
        }
        self.offsets.push(self.cols.len());
    }

    /// Rows of edge-weighted means: `Σ w·src[p] / Σ w` over each list (zero rows for lists
    /// without weight).
    pub(crate) fn means(lists: &[Vec<(u32, f32)>]) -> SparseRows {
        let mut rows = SparseRows::default();
        for list in lists {
            let total: f32 = list.iter().map(|x| x.1).sum();
            let scale = if total > 0.0 { 1.0 / total } else { 0.0 };
            rows.push(list.iter().map(|&(p, w)| (p, w * scale)));
        }
        rows
    }

    /// Row `r`'s entries.
    pub(crate) fn row(&self, r: usize) -> impl Iterator<Item = (u32, f32)> + '_ {
        let (s, e) = (self.offsets[r], self.offsets[r + 1]);
        self.cols[s..e].iter().copied().zip(self.vals[s..e].iter().copied())
    }

    /// Number of rows.
    pub(crate) fn n_rows(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }
}

/// The rows `rows` describes, of `src` (`rows.n_rows() × width`): a sparse product forward
/// and its transpose backward, instead of gathering a `rows × neighbours × width` tensor.
pub(crate) fn sparse_rows(src: &Tensor, rows: SparseRows) -> candle_core::Result<Tensor> {
    let n_src = src.dim(0)?;
    if let Some(bad) = rows.cols.iter().find(|c| **c as usize >= n_src) {
        candle_core::bail!("sparse row refers to row {bad} of {n_src}");
    }
    src.contiguous()?.apply_op1(SparseRowsOp { rows, n_src })
}

struct SparseRowsOp {
    rows: SparseRows,
    n_src: usize,
}

impl candle_core::CustomOp1 for SparseRowsOp {
    fn name(&self) -> &'static str {
        "sparse-rows"
    }

    fn cpu_fwd(
        &self,
        storage: &candle_core::CpuStorage,
        layout: &candle_core::Layout,
    ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
        let src = f32_values(storage, layout, self.name())?;
        let width = layout.shape().dims().get(1).copied().unwrap_or(0);
        let n = self.rows.n_rows();
        let mut out = vec![0f32; n * width];
        for (r, row) in out.chunks_mut(width.max(1)).enumerate().take(n) {
            for (p, w) in self.rows.row(r) {
                for (o, x) in row.iter_mut().zip(&src[p as usize * width..(p as usize + 1) * width]) {
                    *o += w * x;
                }
            }
        }
        Ok((candle_core::CpuStorage::F32(out), (n, width).into()))
    }

    fn bwd(&self, _src: &Tensor, _out: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let width = grad.dim(1)?;
        let g = grad.flatten_all()?.to_vec1::<f32>()?;
        let mut out = vec![0f32; self.n_src * width];
        for r in 0..self.rows.n_rows() {
            let gr = &g[r * width..(r + 1) * width];
            for (p, w) in self.rows.row(r) {
                for (o, x) in out[p as usize * width..(p as usize + 1) * width].iter_mut().zip(gr) {
                    *o += w * x;
                }
            }
        }
        Ok(Some(Tensor::from_vec(out, (self.n_src, width), grad.device())?))
    }
}

/// `ReLU(x) · mask` (an inverted-dropout mask, or none) in one pass each way; candle's own
/// ReLU and product would also build the mask's unused gradient.
pub(crate) fn masked_relu(x: &Tensor, mask: Option<&[f32]>) -> candle_core::Result<Tensor> {
    if let Some(m) = mask {
        if m.len() != x.elem_count() {
            candle_core::bail!("dropout mask of {} for {} values", m.len(), x.elem_count());
        }
    }
    x.contiguous()?.apply_op1(MaskedRelu(mask.map(|m| m.to_vec())))
}

struct MaskedRelu(Option<Vec<f32>>);

impl candle_core::CustomOp1 for MaskedRelu {
    fn name(&self) -> &'static str {
        "masked-relu"
    }

    fn cpu_fwd(
        &self,
        storage: &candle_core::CpuStorage,
        layout: &candle_core::Layout,
    ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
        let x = f32_values(storage, layout, self.name())?;
        let out: Vec<f32> = match &self.0 {
            Some(m) => x.iter().zip(m).map(|(x, m)| x.max(0.0) * m).collect(),
            None => x.iter().map(|x| x.max(0.0)).collect(),
        };
        Ok((candle_core::CpuStorage::F32(out), layout.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _out: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let xs = x.flatten_all()?.to_vec1::<f32>()?;
        let g = grad.flatten_all()?.to_vec1::<f32>()?;
        let out: Vec<f32> = match &self.0 {
            Some(m) => xs.iter().zip(&g).zip(m).map(|((x, g), m)| if *x > 0.0 { g * m } else { 0.0 }).collect(),
            None => xs.iter().zip(&g).map(|(x, g)| if *x > 0.0 { *g } else { 0.0 }).collect(),
        };
        Tensor::from_vec(out, x.shape(), x.device()).map(Some)
    }
}

/// Rows scaled to unit length (zero rows stay zero).
pub(crate) fn l2(x: &Tensor) -> candle_core::Result<Tensor> {
    x.broadcast_div(&x.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?.clamp(1e-12, f64::MAX)?)
}

/// A candle error as this crate's error.
pub(crate) fn candle(e: candle_core::Error) -> Error {
    Error::BadData(format!("tensor library: {e}"))
}

/// A parameter set initialised from `seed` (candle's own random init is not seeded): each
/// spec is a name, a shape and the standard deviation of its normal initial values; names in
/// `constants` start at the given value instead.
pub(crate) fn seeded_varmap(
    specs: &[(String, Vec<usize>, f32)],
    seed: u64,
    constants: &[(&str, f32)],
) -> Result<VarMap> {
    let varmap = VarMap::new();
    {
        let mut vars = varmap.data().lock().map_err(|_| Error::BadData("poisoned variables".into()))?;
        let mut init = Rng::new(seed);
        for (name, dims, std) in specs {
            let len: usize = dims.iter().product();
            let values: Vec<f32> = match constants.iter().find(|c| c.0 == name) {
                Some((_, v)) => vec![*v; len],
                None => (0..len).map(|_| init.normal_f32() * std).collect(),
            };
            let t = Tensor::from_vec(values, dims.clone(), &Device::Cpu).map_err(candle)?;
            vars.insert(name.clone(), Var::from_tensor(&t).map_err(candle)?);
        }
    }
    Ok(varmap)
}

/// Copies of every parameter (the best epoch so far).
fn snapshot(varmap: &VarMap) -> Result<HashMap<String, Tensor>> {
    varmap
        .data()
        .lock()
        .map_err(|_| Error::BadData("poisoned variables".into()))?
        .iter()
        .map(|(k, v)| -> candle_core::Result<(String, Tensor)> { Ok((k.clone(), v.as_tensor().copy()?)) })
        .collect::<candle_core::Result<HashMap<_, _>>>()
        .map_err(candle)
}

/// Puts a snapshot's values back.
fn restore(varmap: &VarMap, snapshot: &HashMap<String, Tensor>) -> Result<()> {
    let vars = varmap.data().lock().map_err(|_| Error::BadData("poisoned variables".into()))?;
    for (k, v) in vars.iter() {
        if let Some(s) = snapshot.get(k) {
            v.set(s).map_err(candle)?;
        }
    }
    Ok(())
}

/// What one training epoch of a neural model did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EpochReport {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training loss.
    pub loss: f64,
    /// Validation NDCG@10 (when validation users exist).
    pub validation_ndcg: Option<f64>,
    /// Seconds spent on the training steps (validation excluded).
    pub train_seconds: f64,
    /// Training examples (or positive links) seen.
    pub examples: usize,
}

/// Early stopping on validation NDCG@10: keeps a copy of the best epoch's parameters and
/// says when `patience` epochs in a row did not beat it.
pub(crate) struct EarlyStopping {
    best: Option<(f64, HashMap<String, Tensor>)>,
    since_best: usize,
    patience: usize,
}

impl EarlyStopping {
    pub(crate) fn new(patience: usize) -> EarlyStopping {
        EarlyStopping { best: None, since_best: 0, patience }
    }

    /// Records an epoch's validation score; `true` when training should stop.
    pub(crate) fn observe(&mut self, score: f64, varmap: &VarMap) -> Result<bool> {
        if self.best.as_ref().is_none_or(|b| score > b.0) {
            self.best = Some((score, snapshot(varmap)?));
            self.since_best = 0;
            Ok(false)
        } else {
            self.since_best += 1;
            Ok(self.since_best > self.patience)
        }
    }

    /// Puts the best epoch's parameters back (nothing when no epoch was validated).
    pub(crate) fn restore_best(self, varmap: &VarMap) -> Result<()> {
        match self.best {
            Some((_, best)) => restore(varmap, &best),
            None => Ok(()),
        }
    }
}

/// The items' content vectors as an `n_items × dim` tensor (`n_items × 1` zeros without).
pub(crate) fn content_tensor(v: Option<&warmstart_core::ItemVectors>, n_items: usize) -> Result<Tensor> {
    match v {
        Some(v) if v.dim > 0 => {
            if v.n_items() != n_items {
                return Err(Error::BadData(format!("{} item vectors for {n_items} items", v.n_items())));
            }
            Tensor::from_vec(v.data.clone(), (n_items, v.dim), &Device::Cpu).map_err(candle)
        }
        _ => Tensor::zeros((n_items, 1), candle_core::DType::F32, &Device::Cpu).map_err(candle),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Var;

    /// The custom ops give the values and gradients of candle's own formulations.
    #[test]
    fn custom_ops_match_candle_gradients() {
        let dev = &Device::Cpu;
        let src = Var::from_vec((0..15).map(|i| (i as f32 * 0.37).sin()).collect::<Vec<_>>(), (5, 3), dev).unwrap();
        let (idx, w) = (vec![1u32, 4, 0, 2, 2, 0, 3, 3, 3], vec![1.0f32, 3.0, 0.0, 2.0, 2.0, 0.0, 0.0, 0.0, 0.0]);
        let lists: Vec<Vec<(u32, f32)>> =
            (0..3).map(|r| (0..3).map(|j| (idx[r * 3 + j], w[r * 3 + j])).filter(|x| x.1 > 0.0).collect()).collect();
        let mean = sparse_rows(src.as_tensor(), SparseRows::means(&lists)).unwrap();
        let index = Tensor::from_vec(idx.clone(), 9, dev).unwrap();
        let wt = Tensor::from_vec(w.clone(), (3, 3, 1), dev).unwrap();
        let reference = src
            .as_tensor()
            .index_select(&index, 0)
            .unwrap()
            .reshape((3, 3, 3))
            .unwrap()
            .broadcast_mul(&wt)
            .unwrap()
            .sum(1)
            .unwrap()
            .broadcast_div(&wt.sum(1).unwrap().clamp(1e-12, f64::MAX).unwrap())
            .unwrap();
        let probe = Tensor::from_vec((0..9).map(|i| i as f32 - 4.0).collect::<Vec<_>>(), (3, 3), dev).unwrap();
        let close = |a: &Tensor, b: &Tensor| {
            let d = (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(d < 1e-5, "{a} vs {b}");
        };
        close(&mean, &reference);
        assert_eq!(mean.to_vec2::<f32>().unwrap()[2], vec![0.0; 3], "a row without weight is zero");
        let mut bad = SparseRows::default();
        bad.push([(9, 1.0)]);
        assert!(sparse_rows(src.as_tensor(), bad).is_err(), "a row of a missing source row");
        let g1 = (mean * &probe).unwrap().sum_all().unwrap().backward().unwrap();
        let g2 = (reference * &probe).unwrap().sum_all().unwrap().backward().unwrap();
        close(g1.get(src.as_tensor()).unwrap(), g2.get(src.as_tensor()).unwrap());

        let w = Var::from_vec((0..6).map(|i| i as f32 * 0.5 - 1.0).collect::<Vec<_>>(), (3, 2), dev).unwrap();
        let x = Tensor::from_vec((0..12).map(|i| (i as f32).cos()).collect::<Vec<_>>(), (4, 3), dev).unwrap();
        let ours = constant_matmul(x.clone(), w.as_tensor()).unwrap();
        let theirs = x.matmul(w.as_tensor()).unwrap();
        close(&ours, &theirs);
        let probe = Tensor::from_vec((0..8).map(|i| i as f32).collect::<Vec<_>>(), (4, 2), dev).unwrap();
        let g1 = (ours * &probe).unwrap().sum_all().unwrap().backward().unwrap();
        let g2 = (theirs * &probe).unwrap().sum_all().unwrap().backward().unwrap();
        close(g1.get(w.as_tensor()).unwrap(), g2.get(w.as_tensor()).unwrap());

        let x = Var::from_vec(vec![-1.0f32, 2.0, 0.5, -0.2, 3.0, 1.0], (2, 3), dev).unwrap();
        let mask = [2.0f32, 0.0, 2.0, 2.0, 2.0, 0.0];
        let ours = masked_relu(x.as_tensor(), Some(&mask)).unwrap();
        let theirs = (x.as_tensor().relu().unwrap() * Tensor::from_slice(&mask, (2, 3), dev).unwrap()).unwrap();
        close(&ours, &theirs);
        let probe = Tensor::from_vec((0..6).map(|i| i as f32 + 1.0).collect::<Vec<_>>(), (2, 3), dev).unwrap();
        let g1 = (ours * &probe).unwrap().sum_all().unwrap().backward().unwrap();
        let g2 = (theirs * &probe).unwrap().sum_all().unwrap().backward().unwrap();
        close(g1.get(x.as_tensor()).unwrap(), g2.get(x.as_tensor()).unwrap());
    }
}
