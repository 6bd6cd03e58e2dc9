//! Validated construction and search parameters.

use crate::{Error, Result};

/// Largest accepted `m` (links per node on the upper layers; level 0 keeps `2 m`).
pub const MAX_M: usize = 256;
/// Highest layer a node can be drawn on; with `m ≥ 2` reaching it is practically impossible.
pub const MAX_LEVEL: usize = 16;

/// HNSW parameters; build with [`HnswParams::builder`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HnswParams {
    m: usize,
    ef_construction: usize,
    ef_search: usize,
    seed: u64,
}

impl HnswParams {
    /// Starts from the defaults `m = 16`, `ef_construction = 200`, `ef_search = 64`, `seed = 42`.
    pub fn builder() -> HnswParamsBuilder {
        HnswParamsBuilder { m: 16, ef_construction: 200, ef_search: 64, seed: 42 }
    }
    /// Links per node on the upper layers.
    pub fn m(&self) -> usize {
        self.m
    }
    /// Links per node on level 0 (`2 m`).
    pub fn m0(&self) -> usize {
        2 * self.m
    }
    /// Candidate list size while inserting.
    pub fn ef_construction(&self) -> usize {
        self.ef_construction
    }
    /// Default candidate list size for queries (raised to `k` when smaller).
    pub fn ef_search(&self) -> usize {
        self.ef_search
    }
    /// Seed of the level draws: the same seed and input give the same graph and results.
    pub fn seed(&self) -> u64 {
        self.seed
    }
    /// Level multiplier `1 / ln m`.
    pub(crate) fn level_mult(&self) -> f64 {
        1.0 / (self.m as f64).ln()
    }
    pub(crate) fn from_raw(m: usize, ef_construction: usize, ef_search: usize, seed: u64) -> Result<Self> {
        HnswParamsBuilder { m, ef_construction, ef_search, seed }.build()
    }
}

impl Default for HnswParams {
    fn default() -> Self {
        HnswParams { m: 16, ef_construction: 200, ef_search: 64, seed: 42 }
    }
}

/// Builder for [`HnswParams`]; [`build`](HnswParamsBuilder::build) validates.
#[derive(Debug, Clone)]
pub struct HnswParamsBuilder {
    m: usize,
    ef_construction: usize,
    ef_search: usize,
    seed: u64,
}

impl HnswParamsBuilder {
    /// Links per node on the upper layers, 2..=256 (level 0 keeps twice as many).
    pub fn m(mut self, m: usize) -> Self {
        self.m = m;
        self
    }
    /// Candidate list size while inserting, at least `m`.
    pub fn ef_construction(mut self, ef: usize) -> Self {
        self.ef_construction = ef;
        self
    }
    /// Default candidate list size for queries, at least 1.
    pub fn ef_search(mut self, ef: usize) -> Self {
        self.ef_search = ef;
        self
    }
    /// Seed of the level draws.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// Checks the ranges and returns the parameters.
    pub fn build(self) -> Result<HnswParams> {
        if !(2..=MAX_M).contains(&self.m) {
            return Err(Error::InvalidParams(format!("m must be in 2..={MAX_M}, got {}", self.m)));
        }
        if self.ef_construction < self.m || self.ef_construction > 1 << 20 {
            return Err(Error::InvalidParams(format!(
                "ef_construction must be in m..=1048576 (m = {}), got {}",
                self.m, self.ef_construction
            )));
        }
        if self.ef_search == 0 || self.ef_search > 1 << 20 {
            return Err(Error::InvalidParams(format!("ef_search must be in 1..=1048576, got {}", self.ef_search)));
        }
        Ok(HnswParams { m: self.m, ef_construction: self.ef_construction, ef_search: self.ef_search, seed: self.seed })
    }
}
