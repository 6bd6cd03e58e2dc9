//! Custom candle ops: each computes in one pass forward and one backward what candle would run
//! as several element-wise ops, and skips gradients nobody needs (data inputs, masks).

use candle_core::{Device, Tensor, D};

/// The values of a custom op's input, which must be contiguous f32.
pub(crate) fn f32_values<'a>(
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

/// What a fused dense layer applies after `x · w + b`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Activation {
    /// `max(z, 0)`.
    Relu,
    /// Each row divided by its L2 norm.
    L2,
}

/// `act(prefix · w[..p] + x · w[p..] + b)` in one op each way, where `prefix` (`rows × p`) is
/// data (no gradient) and `x` (`rows × k`), `w` (`(p + k) × h`) and `b` (`h`) are trained.
/// Candle's separate ops would materialise and differentiate the sum, the broadcast bias and
/// the activation one full `rows × h` pass at a time (each gradient also starting from a
/// zeroed tensor), and compute the prefix's unused gradient; this computes the two products
/// forward, three backward, and one pass for the rest.
pub(crate) fn fused_dense(
    prefix: Option<Tensor>,
    x: &Tensor,
    (w, b): &(Tensor, Tensor),
    act: Activation,
) -> candle_core::Result<Tensor> {
    let rows = x.dim(0)?;
    if let Some(p) = &prefix {
        if p.dim(0)? != rows {
            candle_core::bail!("fused dense layer: {} prefix rows for {rows} rows", p.dim(0)?);
        }
    }
    let prefix = prefix.map(|p| p.contiguous()).transpose()?;
    x.contiguous()?.apply_op3(w, b, FusedDense { prefix, act, norms: std::sync::Mutex::new(Vec::new()) })
}

struct FusedDense {
    prefix: Option<Tensor>,
    act: Activation,
    /// Row norms before L2 normalisation, kept from the forward pass for the backward one.
    norms: std::sync::Mutex<Vec<f32>>,
}

impl FusedDense {
    fn prefix_width(&self) -> candle_core::Result<usize> {
        self.prefix.as_ref().map(|p| p.dim(1)).transpose().map(|w| w.unwrap_or(0))
    }
}

impl candle_core::CustomOp3 for FusedDense {
    fn name(&self) -> &'static str {
        "fused-dense"
    }

    fn cpu_fwd(
        &self,
        xs: &candle_core::CpuStorage,
        xl: &candle_core::Layout,
        ws: &candle_core::CpuStorage,
        wl: &candle_core::Layout,
        bs: &candle_core::CpuStorage,
        bl: &candle_core::Layout,
    ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
        use candle_core::backend::BackendStorage;
        let (rows, k) = xl.shape().dims2()?;
        let (wr, h) = wl.shape().dims2()?;
        let p = self.prefix_width()?;
        if wr != p + k {
            candle_core::bail!("fused dense layer: weights of {wr} rows for {p} + {k} inputs");
        }
        let bias = f32_values(bs, bl, self.name())?;
        if bias.len() != h {
            candle_core::bail!("fused dense layer: bias of {} for {h} outputs", bias.len());
        }
        let product = |s: &candle_core::CpuStorage, l: &candle_core::Layout, from: usize, width: usize| match s.matmul(
            ws,
            (1, rows, h, width),
            l,
            &wl.narrow(0, from, width)?,
        )? {
            candle_core::CpuStorage::F32(v) => Ok(v),
            _ => candle_core::bail!("fused dense layer needs f32"),
        };
        let mut z = product(xs, xl, p, k)?;
        if let Some(prefix) = &self.prefix {
            let (storage, layout) = prefix.storage_and_layout();
            let candle_core::Storage::Cpu(cpu) = &*storage else {
                candle_core::bail!("fused dense layer runs on the CPU")
            };
            for (z, q) in z.iter_mut().zip(product(cpu, layout, 0, p)?) {
                *z += q;
            }
        }
        use rayon::prelude::*;
        match self.act {
            Activation::Relu => z.par_chunks_mut(h.max(1)).for_each(|row| {
                for (z, b) in row.iter_mut().zip(bias) {
                    *z = (*z + b).max(0.0);
                }
            }),
            Activation::L2 => {
                let norms: Vec<f32> = z
                    .par_chunks_mut(h.max(1))
                    .map(|row| {
                        for (z, b) in row.iter_mut().zip(bias) {
                            *z += b;
                        }
                        normalise_row(row)
                    })
                    .collect();
                *self.norms.lock().map_err(|_| candle_core::Error::Msg("fused dense: poisoned".into()))? = norms;
            }
        }
        Ok((candle_core::CpuStorage::F32(z), (rows, h).into()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        out: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        use rayon::prelude::*;
        let (rows, h) = out.dims2()?;
        let w_row = h.max(1);
        let grad = grad.contiguous()?;
        let mut dz = vec![0f32; rows * h];
        {
            let (storage, layout) = out.storage_and_layout();
            let candle_core::Storage::Cpu(cpu) = &*storage else {
                candle_core::bail!("fused dense layer runs on the CPU")
            };
            let y = f32_values(cpu, layout, self.name())?;
            let (g_storage, g_layout) = grad.storage_and_layout();
            let candle_core::Storage::Cpu(g_cpu) = &*g_storage else {
                candle_core::bail!("fused dense layer runs on the CPU")
            };
            let g = f32_values(g_cpu, g_layout, self.name())?;
            match self.act {
                Activation::Relu => {
                    dz.par_chunks_mut(w_row).zip(y.par_chunks(w_row)).zip(g.par_chunks(w_row)).for_each(
                        |((d, y), g)| {
                            for ((d, y), g) in d.iter_mut().zip(y).zip(g) {
                                if *y > 0.0 {
                                    *d = *g;
                                }
                            }
                        },
                    )
                }
                Activation::L2 => {
                    dz.copy_from_slice(g);
                    let norms =
                        self.norms.lock().map_err(|_| candle_core::Error::Msg("fused dense: poisoned".into()))?;
                    if norms.len() != rows {
                        candle_core::bail!("fused dense layer: backward without its forward pass");
                    }
                    dz.par_chunks_mut(w_row)
                        .zip(y.par_chunks(w_row))
                        .zip(norms.par_iter())
                        .for_each(|((g, y), n)| normalised_row_gradient(g, y, *n));
                }
            }
        }
        // the bias gradient: partial sums over fixed blocks of rows, added in order
        // (deterministic whatever the threads)
        let partial: Vec<Vec<f32>> = dz
            .par_chunks(w_row * 64)
            .map(|block| {
                let mut d = vec![0f32; h];
                for row in block.chunks(w_row) {
                    d.iter_mut().zip(row).for_each(|(d, g)| *d += g);
                }
                d
            })
            .collect();
        let mut db = vec![0f32; h];
        for p in partial {
            db.iter_mut().zip(p).for_each(|(a, b)| *a += b);
        }
        let dz = Tensor::from_vec(dz, (rows, h), out.device())?;
        let p = self.prefix_width()?;
        let k = x.dim(1)?;
        let w = w.detach();
        let dx = dz.matmul(&w.narrow(0, p, k)?.t()?)?;
        let dw_x = x.detach().t()?.matmul(&dz)?;
        let dw = match &self.prefix {
            Some(prefix) => Tensor::cat(&[&prefix.t()?.matmul(&dz)?, &dw_x], 0)?,
            None => dw_x,
        };
        Ok((Some(dx), Some(dw), Some(Tensor::from_vec(db, h, out.device())?)))
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
    if x.rank() == 2 && x.dtype() == candle_core::DType::F32 {
        // one op each way instead of five (square, sum, root, clamp, divide) and their gradients
        return x.contiguous()?.apply_op1(RowL2);
    }
    x.broadcast_div(&x.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?.clamp(1e-12, f64::MAX)?)
}

/// A row's L2 norm, at least 1e-12.
fn row_norm(row: &[f32]) -> f32 {
    row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12)
}

/// Divides a row by its norm; returns the norm.
fn normalise_row(row: &mut [f32]) -> f32 {
    let n = row_norm(row);
    row.iter_mut().for_each(|v| *v /= n);
    n
}

/// The gradient through `y = x / ‖x‖` for one row, in place: `(g − y (g · y)) / ‖x‖`.
fn normalised_row_gradient(g: &mut [f32], y: &[f32], norm: f32) {
    let gy: f32 = g.iter().zip(y).map(|(g, y)| g * y).sum();
    g.iter_mut().zip(y).for_each(|(g, y)| *g = (*g - y * gy) / norm);
}

/// Each row divided by its L2 norm (at least 1e-12).
struct RowL2;

impl candle_core::CustomOp1 for RowL2 {
    fn name(&self) -> &'static str {
        "row-l2"
    }

    fn cpu_fwd(
        &self,
        storage: &candle_core::CpuStorage,
        layout: &candle_core::Layout,
    ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
        let x = f32_values(storage, layout, self.name())?;
        let width = layout.shape().dims2()?.1.max(1);
        let mut out = x.to_vec();
        for row in out.chunks_mut(width) {
            normalise_row(row);
        }
        Ok((candle_core::CpuStorage::F32(out), layout.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, out: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let width = x.dim(1)?.max(1);
        let (xs, ys) = (x.flatten_all()?.to_vec1::<f32>()?, out.flatten_all()?.to_vec1::<f32>()?);
        let mut g = grad.flatten_all()?.to_vec1::<f32>()?;
        for ((g, y), x) in g.chunks_mut(width).zip(ys.chunks(width)).zip(xs.chunks(width)) {
            normalised_row_gradient(g, y, row_norm(x));
        }
        Tensor::from_vec(g, x.shape(), x.device()).map(Some)
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

        // a layer over [data | parameters] split in two products (the two-tower's first layer)
        let w = Var::from_vec((0..10).map(|i| (i as f32 * 0.7).sin()).collect::<Vec<_>>(), (5, 2), dev).unwrap();
        let e = Var::from_vec((0..8).map(|i| i as f32 * 0.1 - 0.3).collect::<Vec<_>>(), (4, 2), dev).unwrap();
        let wt = w.as_tensor();
        let split = (constant_matmul(x.clone(), &wt.narrow(0, 0, 3).unwrap()).unwrap()
            + e.as_tensor().matmul(&wt.narrow(0, 3, 2).unwrap()).unwrap())
        .unwrap();
        let whole = Tensor::cat(&[&x, e.as_tensor()], 1).unwrap().matmul(wt).unwrap();
        close(&split, &whole);
        let g1 = (split * &probe).unwrap().sum_all().unwrap().backward().unwrap();
        let g2 = (whole * &probe).unwrap().sum_all().unwrap().backward().unwrap();
        close(g1.get(wt).unwrap(), g2.get(wt).unwrap());
        close(g1.get(e.as_tensor()).unwrap(), g2.get(e.as_tensor()).unwrap());

        // the fused layer against candle's ops, with and without a data prefix
        let b = Var::from_vec(vec![0.3f32, -0.4], 2, dev).unwrap();
        for (act, prefixed) in [(Activation::Relu, true), (Activation::L2, true), (Activation::L2, false)] {
            let (prefix, wx) =
                if prefixed { (Some(x.clone()), wt.narrow(0, 3, 2).unwrap()) } else { (None, wt.clone()) };
            let input = if prefixed { e.as_tensor().clone() } else { Tensor::cat(&[&x, e.as_tensor()], 1).unwrap() };
            let layer = (if prefixed { wt.clone() } else { wx.clone() }, b.as_tensor().clone());
            let ours = fused_dense(prefix.clone(), &input, &layer, act).unwrap();
            let z = match &prefix {
                Some(p) => (p.matmul(&wt.narrow(0, 0, 3).unwrap()).unwrap() + input.matmul(&wx).unwrap()).unwrap(),
                None => input.matmul(&wx).unwrap(),
            }
            .broadcast_add(b.as_tensor())
            .unwrap();
            let theirs = match act {
                Activation::Relu => z.relu().unwrap(),
                Activation::L2 => l2(&z).unwrap(),
            };
            close(&ours, &theirs);
            let g1 = (ours * &probe).unwrap().sum_all().unwrap().backward().unwrap();
            let g2 = (theirs * &probe).unwrap().sum_all().unwrap().backward().unwrap();
            for t in [wt, b.as_tensor(), e.as_tensor()] {
                if let (Some(a), Some(c)) = (g1.get(t), g2.get(t)) {
                    close(a, c);
                }
            }
            assert!(g1.get(e.as_tensor()).is_some() && g1.get(wt).is_some() && g1.get(b.as_tensor()).is_some());
        }

        // the fused row normalisation against candle's ops (including an all-zero row)
        {
            let v = Var::from_vec(vec![3.0f32, 4.0, 0.0, 0.0, -1.0, 2.0], (3, 2), dev).unwrap();
            let ours = l2(v.as_tensor()).unwrap();
            let t = v.as_tensor();
            let theirs = t
                .broadcast_div(
                    &t.sqr().unwrap().sum_keepdim(D::Minus1).unwrap().sqrt().unwrap().clamp(1e-12, f64::MAX).unwrap(),
                )
                .unwrap();
            close(&ours, &theirs);
            let probe = Tensor::from_vec(vec![1.0f32, -2.0, 0.5, 3.0, 2.0, 1.0], (3, 2), dev).unwrap();
            let g1 = (ours * &probe).unwrap().sum_all().unwrap().backward().unwrap();
            let g2 = (theirs * &probe).unwrap().sum_all().unwrap().backward().unwrap();
            let (a, b) = (g1.get(t).unwrap().to_vec2::<f32>().unwrap(), g2.get(t).unwrap().to_vec2::<f32>().unwrap());
            for r in [0, 2] {
                assert!(a[r].iter().zip(&b[r]).all(|(x, y)| (x - y).abs() < 1e-5), "{a:?} vs {b:?}");
            }
        }

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
