//! Online experiments: variants declared in a TOML file, sessions assigned by a stable hash
//! of (session id, experiment key), or traffic allocated by a Thompson-sampling bandit; and
//! the report of an experiment (CTR with a session-clustered interval, lift against control,
//! CTR by position, the sample-ratio-mismatch check).
//!
//! ```toml
//! [[experiment]]
//! key = "office-models"          # named by requests: {"experiment": "office-models", "session": …}
//! sites = ["amazon-office"]      # sites it may run on (all when absent)
//! allocation = "split"           # "split" (hash of session and key) or "thompson"
//! control = "pop"                # default: the first variant
//!
//! [[experiment.variant]]
//! name = "pop"
//! model = "pop"
//! weight = 1.0
//!
//! [[experiment.variant]]
//! name = "als"
//! model = "als"
//! diversity = 0.2
//! ```

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use warmstart_eval::online::{lift, ratio_by_session, sample_ratio, Lift, RatioEstimate, SampleRatio};
use warmstart_store::events::{PositionCounts, SessionCounts};

use crate::{Error, Result};

/// How an experiment allocates traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Allocation {
    /// Each session sticks to the variant its hash falls in (by weight).
    #[default]
    Split,
    /// Each request goes to the variant whose CTR posterior (Beta) draws highest.
    Thompson,
}

/// One arm of an experiment: a model and its parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    /// Name (reported; recorded with every recommendation).
    pub name: String,
    /// Model (an artifact's model name, or `live-popular` / `live-trending`); default: the
    /// site's default model.
    #[serde(default)]
    pub model: Option<String>,
    /// Diversity (0–1) of its lists.
    #[serde(default)]
    pub diversity: Option<f32>,
    /// Score exactly instead of through the ANN index.
    #[serde(default)]
    pub exact: bool,
    /// Share of sessions (any positive scale; default 1).
    #[serde(default = "one")]
    pub weight: f64,
}

fn one() -> f64 {
    1.0
}

/// One experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    /// Key requests name.
    pub key: String,
    /// Sites it may run on (empty: all).
    #[serde(default)]
    pub sites: Vec<String>,
    /// Traffic allocation.
    #[serde(default)]
    pub allocation: Allocation,
    /// Control variant (default: the first).
    #[serde(default)]
    pub control: Option<String>,
    /// Variants.
    #[serde(rename = "variant")]
    pub variants: Vec<Variant>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExperimentsFile {
    #[serde(default, rename = "experiment")]
    experiments: Vec<Experiment>,
}

/// Declared experiments, validated.
#[derive(Debug, Clone, Default)]
pub struct Experiments {
    list: Vec<Experiment>,
}

fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

impl Experiments {
    /// Reads and validates a TOML file (errors name the file and the experiment).
    pub fn load(path: &Path) -> Result<Experiments> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::parse(&text).map_err(|e| match e {
            Error::BadRequest { field, reason } => Error::bad(format!("{}: {field}", path.display()), reason),
            other => other,
        })
    }

    /// Parses and validates TOML text.
    pub fn parse(text: &str) -> Result<Experiments> {
        let file: ExperimentsFile = toml::from_str(text).map_err(|e| Error::bad("experiments", e.to_string()))?;
        let mut keys = std::collections::HashSet::new();
        for (n, x) in file.experiments.iter().enumerate() {
            let at = format!("experiment[{n}]");
            if !valid_name(&x.key) {
                return Err(Error::bad(format!("{at}.key"), "1–64 characters of letters, digits, - _ ."));
            }
            if !keys.insert(x.key.as_str()) {
                return Err(Error::bad(format!("{at}.key"), format!("`{}` is declared twice", x.key)));
            }
            if x.variants.len() < 2 {
                return Err(Error::bad(format!("{at}.variant"), "an experiment needs two or more variants"));
            }
            let mut names = std::collections::HashSet::new();
            for (m, v) in x.variants.iter().enumerate() {
                let vat = format!("{at}.variant[{m}]");
                if !valid_name(&v.name) || !names.insert(v.name.as_str()) {
                    return Err(Error::bad(format!("{vat}.name"), "a unique name of 1–64 letters, digits, - _ ."));
                }
                if !(v.weight.is_finite() && v.weight > 0.0) {
                    return Err(Error::bad(format!("{vat}.weight"), "must be a positive number"));
                }
                if v.diversity.is_some_and(|d| !(0.0..=1.0).contains(&d)) {
                    return Err(Error::bad(format!("{vat}.diversity"), "must be in [0, 1]"));
                }
            }
            if let Some(c) = &x.control {
                if !x.variants.iter().any(|v| &v.name == c) {
                    return Err(Error::bad(format!("{at}.control"), format!("no variant `{c}`")));
                }
            }
        }
        Ok(Experiments { list: file.experiments })
    }

    /// The experiment with this key.
    pub fn get(&self, key: &str) -> Option<&Experiment> {
        self.list.iter().find(|x| x.key == key)
    }

    /// Every experiment.
    pub fn all(&self) -> &[Experiment] {
        &self.list
    }
}

/// A uniform number in [0, 1) from (experiment key, session id): FNV-1a, then a SplitMix64
/// finaliser so that similar ids spread evenly. Stable across processes, versions and
/// machines (any replica assigns a session alike).
pub fn assignment_point(experiment: &str, session: &str) -> f64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in experiment.bytes().chain(std::iter::once(0)).chain(session.bytes()) {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d049bb133111eb);
    h ^= h >> 31;
    (h >> 11) as f64 / (1u64 << 53) as f64
}

impl Experiment {
    /// The control variant's index.
    pub fn control_index(&self) -> usize {
        self.control.as_ref().and_then(|c| self.variants.iter().position(|v| &v.name == c)).unwrap_or(0)
    }

    /// The variant a session is assigned to by weight (split allocation).
    pub fn assign(&self, session: &str) -> usize {
        let total: f64 = self.variants.iter().map(|v| v.weight).sum();
        let mut x = assignment_point(&self.key, session) * total;
        for (i, v) in self.variants.iter().enumerate() {
            if x < v.weight {
                return i;
            }
            x -= v.weight;
        }
        self.variants.len() - 1
    }

    /// Whether it may run on a site.
    pub fn runs_on(&self, site: &str) -> bool {
        self.sites.is_empty() || self.sites.iter().any(|s| s == site)
    }
}

/// A Beta(a, b) draw (ratio of two Marsaglia–Tsang gamma draws).
pub fn beta_sample(rng: &mut warmstart_core::Rng, a: f64, b: f64) -> f64 {
    let x = gamma_sample(rng, a);
    let y = gamma_sample(rng, b);
    if x + y > 0.0 {
        x / (x + y)
    } else {
        0.5
    }
}

fn unit(rng: &mut warmstart_core::Rng) -> f64 {
    ((rng.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
}

fn gamma_sample(rng: &mut warmstart_core::Rng, shape: f64) -> f64 {
    if shape < 1.0 {
        // boost: Gamma(a) = Gamma(a + 1) · U^(1/a)
        return gamma_sample(rng, shape + 1.0) * unit(rng).powf(1.0 / shape);
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = rng.normal_f32() as f64;
        let v = (1.0 + c * x).powi(3);
        if v <= 0.0 {
            continue;
        }
        let u = unit(rng);
        if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
            return d * v;
        }
    }
}

/// Thompson sampling over variants from (impressions, clicks): the index whose Beta(1 + clicks,
/// 1 + impressions − clicks) draw is highest.
pub fn thompson_pick(rng: &mut warmstart_core::Rng, counts: &[(u64, u64)]) -> usize {
    let mut best = (0, f64::NEG_INFINITY);
    for (i, &(imp, clicks)) in counts.iter().enumerate() {
        let clicks = clicks.min(imp) as f64;
        let draw = beta_sample(rng, 1.0 + clicks, 1.0 + imp as f64 - clicks);
        if draw > best.1 {
            best = (i, draw);
        }
    }
    best.0
}

/// Click-through rate at one position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PositionReport {
    /// 0-based position.
    pub position: u32,
    /// Impressions.
    pub impressions: u64,
    /// Clicks.
    pub clicks: u64,
    /// clicks / impressions.
    pub ctr: f64,
}

/// A ratio with its 95% interval (delta method over sessions).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Rate {
    /// Value.
    pub value: f64,
    /// Standard error.
    pub se: f64,
    /// Lower end of the 95% interval.
    pub lo: f64,
    /// Upper end of the 95% interval.
    pub hi: f64,
}

impl From<RatioEstimate> for Rate {
    fn from(r: RatioEstimate) -> Rate {
        Rate { value: r.value, se: r.se, lo: r.lo, hi: r.hi }
    }
}

/// A variant against control.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LiftReport {
    /// Relative CTR lift.
    pub relative: f64,
    /// Lower end of its 95% interval.
    pub lo: f64,
    /// Upper end of its 95% interval.
    pub hi: f64,
    /// CTR difference.
    pub difference: f64,
    /// Two-sided p-value.
    pub p_value: f64,
}

impl From<Lift> for LiftReport {
    fn from(l: Lift) -> LiftReport {
        LiftReport { relative: l.relative, lo: l.lo, hi: l.hi, difference: l.difference, p_value: l.p_value }
    }
}

/// One variant's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct VariantReport {
    /// Name.
    pub name: String,
    /// Model.
    pub model: Option<String>,
    /// Declared weight.
    pub weight: f64,
    /// Whether it is the control.
    pub control: bool,
    /// Sessions that received its recommendations.
    pub assigned_sessions: u64,
    /// Recommendation lists served.
    pub recommendations: u64,
    /// Sessions with at least one event (the unit of analysis).
    pub sessions: u64,
    /// Shown items.
    pub impressions: u64,
    /// Clicks.
    pub clicks: u64,
    /// Add-to-carts attributed to its lists.
    pub carts: u64,
    /// Purchases attributed to its lists.
    pub purchases: u64,
    /// Clicks per impression.
    pub ctr: Rate,
    /// Add-to-carts per impression.
    pub cart_rate: Rate,
    /// Purchases per impression.
    pub purchase_rate: Rate,
    /// CTR lift against control (absent for the control).
    pub lift: Option<LiftReport>,
    /// CTR by position.
    pub by_position: Vec<PositionReport>,
}

/// Sample-ratio-mismatch check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SrmReport {
    /// Chi-square statistic of sessions per variant against the weights.
    pub chi2: f64,
    /// Degrees of freedom.
    pub df: usize,
    /// p-value.
    pub p_value: f64,
    /// Flagged (p < 0.001): assignment or logging is broken; do not trust the comparison.
    pub mismatch: bool,
}

impl From<SampleRatio> for SrmReport {
    fn from(s: SampleRatio) -> SrmReport {
        SrmReport { chi2: s.chi2, df: s.df, p_value: s.p_value, mismatch: s.mismatch }
    }
}

/// `GET /v1/experiments/{key}/report`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ExperimentReport {
    /// Experiment key.
    pub experiment: String,
    /// Allocation.
    pub allocation: Allocation,
    /// Control variant.
    pub control: String,
    /// Variants in declaration order.
    pub variants: Vec<VariantReport>,
    /// Sample-ratio check (split allocation only: a bandit moves traffic on purpose).
    pub sample_ratio: Option<SrmReport>,
    /// The variant with the highest CTR whose lift over control is significant (p < 0.05),
    /// else the control.
    pub winner: String,
}

/// The report of an experiment from a store's events.
pub fn report_from_store(store: &warmstart_store::Store, x: &Experiment) -> Result<ExperimentReport> {
    Ok(build_report(
        x,
        &store.experiment_assignments(&x.key)?,
        &store.experiment_sessions(&x.key)?,
        &store.experiment_positions(&x.key)?,
    ))
}

/// Builds a report from stored aggregates.
pub fn build_report(
    x: &Experiment,
    assignments: &[(String, u64, u64)],
    sessions: &[SessionCounts],
    positions: &[PositionCounts],
) -> ExperimentReport {
    let ci = x.control_index();
    let mut by_variant: HashMap<&str, Vec<&SessionCounts>> = HashMap::new();
    for s in sessions {
        by_variant.entry(s.variant.as_str()).or_default().push(s);
    }
    let ratio = |name: &str, f: fn(&SessionCounts) -> u64| {
        let pairs: Vec<(f64, f64)> = by_variant
            .get(name)
            .map(|v| v.iter().map(|s| (f(s) as f64, s.impressions as f64)).collect())
            .unwrap_or_default();
        ratio_by_session(&pairs)
    };
    let control_ctr = ratio(&x.variants[ci].name, |s| s.clicks);
    let mut variants = Vec::new();
    for (i, v) in x.variants.iter().enumerate() {
        let list = by_variant.get(v.name.as_str()).map(Vec::as_slice).unwrap_or(&[]);
        let sum = |f: fn(&SessionCounts) -> u64| list.iter().map(|s| f(s)).sum::<u64>();
        let ctr = ratio(&v.name, |s| s.clicks);
        let (assigned_sessions, recommendations) =
            assignments.iter().find(|a| a.0 == v.name).map(|a| (a.1, a.2)).unwrap_or((0, 0));
        variants.push(VariantReport {
            name: v.name.clone(),
            model: v.model.clone(),
            weight: v.weight,
            control: i == ci,
            assigned_sessions,
            recommendations,
            sessions: list.len() as u64,
            impressions: sum(|s| s.impressions),
            clicks: sum(|s| s.clicks),
            carts: sum(|s| s.carts),
            purchases: sum(|s| s.purchases),
            ctr: ctr.into(),
            cart_rate: ratio(&v.name, |s| s.carts).into(),
            purchase_rate: ratio(&v.name, |s| s.purchases).into(),
            lift: (i != ci).then(|| lift(&ctr, &control_ctr).into()),
            by_position: positions
                .iter()
                .filter(|p| p.variant == v.name)
                .map(|p| PositionReport {
                    position: p.position,
                    impressions: p.impressions,
                    clicks: p.clicks,
                    ctr: if p.impressions > 0 { p.clicks as f64 / p.impressions as f64 } else { 0.0 },
                })
                .collect(),
        });
    }
    let sample_ratio = (x.allocation == Allocation::Split).then(|| {
        let observed: Vec<u64> = variants.iter().map(|v| v.sessions).collect();
        let weights: Vec<f64> = x.variants.iter().map(|v| v.weight).collect();
        sample_ratio(&observed, &weights).into()
    });
    let winner = variants
        .iter()
        .filter(|v| v.control || v.lift.as_ref().is_some_and(|l| l.p_value < 0.05 && l.relative > 0.0))
        .max_by(|a, b| a.ctr.value.total_cmp(&b.ctr.value))
        .map(|v| v.name.clone())
        .unwrap_or_else(|| x.variants[ci].name.clone());
    ExperimentReport {
        experiment: x.key.clone(),
        allocation: x.allocation,
        control: x.variants[ci].name.clone(),
        variants,
        sample_ratio,
        winner,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOML: &str = r#"
[[experiment]]
key = "e1"
[[experiment.variant]]
name = "a"
model = "pop"
[[experiment.variant]]
name = "b"
model = "als"
weight = 3
"#;

    #[test]
    fn parses_validates_and_assigns_by_weight() {
        let xs = Experiments::parse(TOML).unwrap();
        let x = xs.get("e1").unwrap();
        assert_eq!(x.control_index(), 0);
        let mut n = [0usize; 2];
        for s in 0..40_000 {
            n[x.assign(&format!("session-{s}"))] += 1;
        }
        // 1:3 split within a few standard errors (sd of the count ≈ 87)
        assert!((n[1] as f64 - 30_000.0).abs() < 400.0, "{n:?}");
        // stable
        assert_eq!(x.assign("abc"), x.assign("abc"));
        for bad in [
            "[[experiment]]\nkey = \"e\"\n[[experiment.variant]]\nname = \"a\"\n",
            "[[experiment]]\nkey = \"e\"\n[[experiment.variant]]\nname = \"a\"\n[[experiment.variant]]\nname = \"a\"\n",
            "[[experiment]]\nkey = \"e\"\ncolour = 1\n",
            "[[experiment]]\nkey = \"e f\"\n[[experiment.variant]]\nname = \"a\"\n[[experiment.variant]]\nname = \"b\"\n",
            "[[experiment]]\nkey = \"e\"\n[[experiment.variant]]\nname = \"a\"\nweight = -1\n[[experiment.variant]]\nname = \"b\"\n",
        ] {
            assert!(matches!(Experiments::parse(bad), Err(Error::BadRequest { .. })), "{bad}");
        }
    }

    #[test]
    fn thompson_sampling_prefers_the_better_arm() {
        let mut rng = warmstart_core::Rng::new(3);
        let picks = (0..2000).filter(|_| thompson_pick(&mut rng, &[(1000, 50), (1000, 80)]) == 1).count();
        assert!(picks > 1800, "{picks}");
        // no data: even
        let even = (0..4000).filter(|_| thompson_pick(&mut rng, &[(0, 0), (0, 0)]) == 1).count();
        assert!((1800..2200).contains(&even), "{even}");
        // Beta(2, 5) mean 2/7
        let m: f64 = (0..20_000).map(|_| beta_sample(&mut rng, 2.0, 5.0)).sum::<f64>() / 20_000.0;
        assert!((m - 2.0 / 7.0).abs() < 0.01, "{m}");
    }

    #[test]
    fn report_flags_a_60_40_split_of_a_50_50_experiment() {
        let x =
            Experiments::parse(TOML.replace("weight = 3", "weight = 1").as_str()).unwrap().get("e1").unwrap().clone();
        let mut sessions = Vec::new();
        for i in 0..1000 {
            let variant = if i < 600 { "a" } else { "b" };
            let clicks = if variant == "b" && i % 5 == 0 { 2 } else { u64::from(i % 10 == 0) };
            sessions.push(SessionCounts { variant: variant.into(), impressions: 10, clicks, carts: 0, purchases: 0 });
        }
        let r = build_report(&x, &[], &sessions, &[]);
        assert!(r.sample_ratio.as_ref().unwrap().mismatch);
        assert_eq!(r.variants[0].sessions, 600);
        assert!(r.variants[1].lift.as_ref().unwrap().relative > 2.0);
        assert_eq!(r.winner, "b");
    }
}
