//! Pieces shared by the neural models (two-tower, GraphSAGE): dense layers, custom candle ops
//! (`ops`), the fused AdamW (`adamw`), seeded parameter initialisation, best-epoch snapshots
//! and the error conversion from candle.

mod adamw;
mod ops;

use std::collections::HashMap;

use candle_core::{Device, Tensor, Var};
use candle_nn::VarMap;
use warmstart_core::Rng;

use crate::{Error, Result};

pub(crate) use adamw::FusedAdamW;
pub(crate) use ops::{constant_matmul, f32_values, fused_dense, l2, masked_relu, sparse_rows, Activation, SparseRows};

/// `x · w + b`.
pub(crate) fn dense(x: &Tensor, (w, b): &(Tensor, Tensor)) -> candle_core::Result<Tensor> {
    x.matmul(w)?.broadcast_add(b)
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
    fn observe(&mut self, score: f64, varmap: &VarMap) -> Result<bool> {
        if self.best.as_ref().is_none_or(|b| score > b.0) {
            self.best = Some((score, snapshot(varmap)?));
            self.since_best = 0;
            Ok(false)
        } else {
            self.since_best += 1;
            Ok(self.since_best > self.patience)
        }
    }

    /// Ends an epoch: hands its report to `on_epoch`, keeps it in `history` and, when it was
    /// validated, records its score; `true` when training should stop.
    pub(crate) fn end_epoch(
        &mut self,
        report: EpochReport,
        history: &mut Vec<EpochReport>,
        on_epoch: &mut dyn FnMut(&EpochReport),
        varmap: &VarMap,
    ) -> Result<bool> {
        on_epoch(&report);
        let score = report.validation_ndcg;
        history.push(report);
        match score {
            Some(v) => self.observe(v, varmap),
            None => Ok(false),
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
