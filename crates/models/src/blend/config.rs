//! The blend's hyper-parameters, their builder and checks, and the name a blend reads back
//! as; how members' scores are put on one scale.

use super::DEFAULT_MEMBERS;
use crate::{check, Error, Fit, Recommender, Result, TrainData};

/// Hyper-parameters of [`Blend`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BlendConfig {
    pub(super) members: Vec<String>,
    pub(super) validation_share: f64,
    pub(super) step: f32,
    pub(super) seed: u64,
    pub(super) threads: usize,
    /// Weights per history-length bucket as well (chosen on that bucket's validation users).
    #[serde(default)]
    pub(super) by_history: bool,
    /// Weights of their own for histories of one or two other-shop items, chosen on such
    /// histories: every validation user's cold-start case again with its history cut to one
    /// or two of its items at random (the natural short cases are too few to choose on).
    #[serde(default)]
    pub(super) short_history: bool,
    /// How each member's scores are put on one scale before they are weighted.
    #[serde(default)]
    pub(super) normalisation: Normalisation,
    /// Weights for returning shoppers as well: chosen on one leave-one-item-out case per
    /// validation user (an item of theirs ranked in its shop from all their other items, that
    /// shop's included, as next-item protocols ask) and used when the history holds items of
    /// the ranked shop; histories from other shops only keep the cold-start weights.
    #[serde(default)]
    pub(super) item_cases: bool,
    /// Disjoint validation folds (each `validation_share` of the cross-shop training users,
    /// members fitted without that fold): the weights are chosen on the cases of every fold
    /// together (cross-fitting), so more cases decide them at the cost of one member fit
    /// per fold.
    #[serde(default = "one_fold")]
    pub(super) folds: usize,
}

/// Artifacts saved before folds existed were fitted on one fold.
fn one_fold() -> usize {
    1
}

/// How a blend puts its members' scores on one scale (per request, over the shop's items).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Normalisation {
    /// z-scores: `(s − mean) / sd`.
    #[default]
    Zscore,
    /// Reciprocal rank, `60 / (60 + rank)` (rank 0 the best; ties share the better rank), as
    /// reciprocal-rank fusion does: a member's few very high scores cannot dominate.
    Rank,
}

impl Normalisation {
    pub(super) fn apply(self, scores: &mut [f32]) {
        match self {
            Normalisation::Zscore => standardise(scores),
            Normalisation::Rank => reciprocal_rank(scores),
        }
    }
}

/// Scores replaced by `K / (K + rank)` with `K` = 60 (non-finite scores rank last).
pub(super) fn reciprocal_rank(scores: &mut [f32]) {
    const K: f32 = 60.0;
    let key = |x: f32| if x.is_finite() { x } else { f32::NEG_INFINITY };
    let mut order: Vec<u32> = (0..scores.len() as u32).collect();
    order.sort_unstable_by(|&a, &b| key(scores[b as usize]).total_cmp(&key(scores[a as usize])));
    let mut out = vec![0f32; scores.len()];
    let mut rank = 0usize;
    for (p, &i) in order.iter().enumerate() {
        if p > 0 && key(scores[i as usize]) != key(scores[order[p - 1] as usize]) {
            rank = p;
        }
        out[i as usize] = K / (K + rank as f32);
    }
    scores.copy_from_slice(&out);
}

/// Builder of [`BlendConfig`].
#[derive(Debug, Clone)]
pub struct BlendBuilder(BlendConfig);

impl BlendConfig {
    /// Starts a builder: item-kNN, RP3beta, ALS, popularity and brand-kNN (the grid gives a member
    /// weight 0 when it does not help on validation), five validation folds of 10% of the
    /// cross-shop training users each, weight step 0.1, weights for short histories (one or
    /// two other-shop items) and for returning shoppers too.
    pub fn builder() -> BlendBuilder {
        BlendBuilder(BlendConfig {
            members: DEFAULT_MEMBERS.iter().map(|m| m.to_string()).collect(),
            validation_share: 0.1,
            step: 0.1,
            seed: 42,
            threads: 0,
            by_history: false,
            short_history: true,
            normalisation: Normalisation::Zscore,
            item_cases: true,
            folds: 5,
        })
    }
    /// The member model names.
    pub fn members(&self) -> &[String] {
        &self.members
    }
}

impl BlendBuilder {
    /// Member model names (as `by_name` reads them).
    pub fn members(mut self, v: Vec<String>) -> Self {
        self.0.members = v;
        self
    }
    /// Share of the cross-shop training users that choose the weights.
    pub fn validation_share(mut self, v: f64) -> Self {
        self.0.validation_share = v;
        self
    }
    /// Grid step of the weights.
    pub fn step(mut self, v: f32) -> Self {
        self.0.step = v;
        self
    }
    /// Seed.
    pub fn seed(mut self, v: u64) -> Self {
        self.0.seed = v;
        self
    }
    /// Threads of members that use them (0: all cores).
    pub fn threads(mut self, v: usize) -> Self {
        self.0.threads = v;
        self
    }
    /// Also choose weights per history-length bucket (other-shop items 1–2, 3–5, 6+) on that
    /// bucket's validation users, where it has at least [`MIN_BUCKET_CASES`] of them.
    pub fn by_history(mut self, v: bool) -> Self {
        self.0.by_history = v;
        self
    }
    /// Also choose weights for histories of one or two other-shop items, on every cold-start
    /// validation case cut to one or two history items (and the naturally short ones).
    pub fn short_history(mut self, v: bool) -> Self {
        self.0.short_history = v;
        self
    }
    /// Also choose weights for histories that hold items of the ranked shop, on one
    /// leave-one-item-out case per validation user.
    pub fn item_cases(mut self, v: bool) -> Self {
        self.0.item_cases = v;
        self
    }
    /// How members' scores are put on one scale.
    pub fn normalisation(mut self, v: Normalisation) -> Self {
        self.0.normalisation = v;
        self
    }
    /// Validation folds (cross-fitting): `n` disjoint sets of validation users, each with
    /// members fitted without it.
    pub fn folds(mut self, n: usize) -> Self {
        self.0.folds = n;
        self
    }
    /// Validates.
    pub fn build(self) -> Result<BlendConfig> {
        let c = self.0;
        check("members", (2..=6).contains(&c.members.len()), c.members.len(), "must be 2 to 6 models")?;
        if let Some(m) = c.members.iter().find(|m| m.starts_with("blend")) {
            return Err(Error::ModelParameter(format!("a blend cannot contain a blend (`{m}`)")));
        }
        check(
            "validation_share",
            c.validation_share > 0.0 && c.validation_share < 0.5,
            c.validation_share,
            "must be in (0, 0.5)",
        )?;
        check("step", c.step > 0.0 && c.step <= 0.5, c.step, "must be in (0, 0.5]")?;
        check(
            "folds",
            c.folds >= 1 && c.folds as f64 * c.validation_share <= 1.0 + 1e-9,
            c.folds,
            "must be at least 1, and folds × validation share at most 1",
        )?;
        Ok(c)
    }
}

/// Member scores standardised over the scored items: `(s - mean) / std` (0 when constant);
/// non-finite scores become the lowest finite one.
pub(super) fn standardise(scores: &mut [f32]) {
    let finite: Vec<f32> = scores.iter().copied().filter(|x| x.is_finite()).collect();
    if finite.is_empty() {
        scores.fill(0.0);
        return;
    }
    let n = finite.len() as f64;
    let mean = finite.iter().map(|&x| x as f64).sum::<f64>() / n;
    let var = finite.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
    let low = finite.iter().copied().fold(f32::INFINITY, f32::min);
    let sd = var.sqrt();
    for s in scores.iter_mut() {
        let x = if s.is_finite() { *s } else { low };
        *s = if sd > 1e-12 { ((x as f64 - mean) / sd) as f32 } else { 0.0 };
    }
}

impl Fit for BlendConfig {
    fn name(&self) -> String {
        self.model_name()
    }
    fn fit(&self, data: &TrainData) -> Result<Box<dyn Recommender>> {
        Ok(Box::new(self.fit_blend(data)?))
    }
}

impl BlendConfig {
    /// The name `by_name` reads back: `blend`, `blend-content` or `blend:members=a+b` (a
    /// member's own parameters written with `/` for `:`, `blend:members=itemknn/shrink=200+pop`).
    pub fn model_name(&self) -> String {
        let mut name = self.members_name();
        let defaults = BlendConfig::builder().0;
        if self.step != defaults.step {
            name += &format!(":step={}", self.step);
        }
        if self.validation_share != defaults.validation_share {
            name += &format!(":validation={}", self.validation_share);
        }
        if self.folds != defaults.folds {
            name += &format!(":folds={}", self.folds);
        }
        if self.normalisation == Normalisation::Rank {
            name += ":norm=rank";
        }
        if !self.item_cases {
            name += ":items=0";
        }
        if self.by_history {
            name += ":history=1";
        }
        if self.short_history != defaults.short_history {
            name += if self.short_history { ":short=1" } else { ":short=0" };
        }
        name
    }

    fn members_name(&self) -> String {
        let m: Vec<&str> = self.members.iter().map(String::as_str).collect();
        if m == DEFAULT_MEMBERS {
            "blend".into()
        } else if m.len() == DEFAULT_MEMBERS.len() + 1
            && m[..DEFAULT_MEMBERS.len()] == DEFAULT_MEMBERS
            && m[DEFAULT_MEMBERS.len()] == "content"
        {
            "blend-content".into()
        } else {
            let members: Vec<String> = self.members.iter().map(|m| m.replace(':', "/")).collect();
            format!("blend:members={}", members.join("+"))
        }
    }
}
