//! Statistics of online experiments (A/B tests) whose unit of randomisation is a session
//! while the metric is a ratio over impressions: click-through rate = clicks / impressions.
//! Impressions of one session are not independent (a shopper who clicks once tends to click
//! again), so the variance of a ratio is estimated with the delta method over sessions, not as
//! a binomial proportion over impressions (which understates it). Also the lift of a variant
//! against control with its interval and p-value, and the sample-ratio-mismatch check.

use serde::Serialize;

use crate::stats::{chi2_sf, normal_two_sided_p};

/// z of a two-sided 95% interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// p-value below which a sample-ratio mismatch is flagged (the customary, strict threshold:
/// a true split trips it once in a thousand experiments).
pub const SRM_ALPHA: f64 = 0.001;

/// A ratio of sums over sessions (e.g. clicks / impressions) with its delta-method standard
/// error and 95% interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RatioEstimate {
    /// Σ numerator / Σ denominator (0 when the denominator is 0).
    pub value: f64,
    /// Standard error (delta method over sessions; 0 with fewer than two sessions).
    pub se: f64,
    /// Lower end of the 95% interval.
    pub lo: f64,
    /// Upper end of the 95% interval.
    pub hi: f64,
    /// Σ numerator.
    pub numerator: f64,
    /// Σ denominator.
    pub denominator: f64,
    /// Sessions.
    pub sessions: usize,
}

/// The ratio Σy / Σx of per-session pairs `(y, x)` and its variance by the delta method:
/// `Var(R) ≈ (s²_y − 2 R s_xy + R² s²_x) / (n x̄²)` with sample (co)variances over sessions.
pub fn ratio_by_session(pairs: &[(f64, f64)]) -> RatioEstimate {
    let n = pairs.len();
    let sy: f64 = pairs.iter().map(|p| p.0).sum();
    let sx: f64 = pairs.iter().map(|p| p.1).sum();
    let value = if sx > 0.0 { sy / sx } else { 0.0 };
    let mut se = 0.0;
    if n >= 2 && sx > 0.0 {
        let (my, mx) = (sy / n as f64, sx / n as f64);
        let (mut vy, mut vx, mut cxy) = (0.0, 0.0, 0.0);
        for &(y, x) in pairs {
            vy += (y - my) * (y - my);
            vx += (x - mx) * (x - mx);
            cxy += (y - my) * (x - mx);
        }
        let d = (n - 1) as f64;
        let var = (vy / d - 2.0 * value * cxy / d + value * value * vx / d) / (n as f64 * mx * mx);
        se = var.max(0.0).sqrt();
    }
    RatioEstimate {
        value,
        se,
        lo: (value - Z95 * se).max(0.0),
        hi: value + Z95 * se,
        numerator: sy,
        denominator: sx,
        sessions: n,
    }
}

/// A variant against control.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Lift {
    /// Relative lift `R_t / R_c − 1` (0 when control's ratio is 0).
    pub relative: f64,
    /// Lower end of its 95% interval (delta method).
    pub lo: f64,
    /// Upper end of its 95% interval.
    pub hi: f64,
    /// Absolute difference `R_t − R_c`.
    pub difference: f64,
    /// Two-sided p-value of the difference (z-test, independent groups).
    pub p_value: f64,
}

/// Lift of `treatment` over `control` (independent groups of sessions).
pub fn lift(treatment: &RatioEstimate, control: &RatioEstimate) -> Lift {
    let (t, c) = (treatment.value, control.value);
    let difference = t - c;
    let se_diff = (treatment.se.powi(2) + control.se.powi(2)).sqrt();
    let p_value = if se_diff > 0.0 {
        normal_two_sided_p(difference / se_diff)
    } else if difference == 0.0 {
        1.0
    } else {
        0.0
    };
    if c <= 0.0 {
        return Lift { relative: 0.0, lo: 0.0, hi: 0.0, difference, p_value };
    }
    let relative = t / c - 1.0;
    let se = (treatment.se.powi(2) / (c * c) + t * t * control.se.powi(2) / c.powi(4)).sqrt();
    Lift { relative, lo: relative - Z95 * se, hi: relative + Z95 * se, difference, p_value }
}

/// Sample-ratio-mismatch check: do the observed units per variant fit the declared weights?
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SampleRatio {
    /// Pearson's chi-square statistic.
    pub chi2: f64,
    /// Degrees of freedom (variants − 1).
    pub df: usize,
    /// Its p-value.
    pub p_value: f64,
    /// Whether `p_value < SRM_ALPHA`: the assignment (or the logging) is broken and the
    /// experiment's comparisons cannot be trusted.
    pub mismatch: bool,
}

/// Pearson's chi-square goodness of fit of `observed` counts to `weights` (any positive
/// scale).
pub fn sample_ratio(observed: &[u64], weights: &[f64]) -> SampleRatio {
    let total: f64 = observed.iter().map(|&o| o as f64).sum();
    let wsum: f64 = weights.iter().filter(|w| w.is_finite() && **w > 0.0).sum();
    let df = observed.len().saturating_sub(1);
    if total == 0.0 || wsum <= 0.0 || df == 0 || observed.len() != weights.len() {
        return SampleRatio { chi2: 0.0, df, p_value: 1.0, mismatch: false };
    }
    let chi2: f64 = observed
        .iter()
        .zip(weights)
        .map(|(&o, &w)| {
            let e = total * w / wsum;
            if e > 0.0 {
                (o as f64 - e).powi(2) / e
            } else {
                0.0
            }
        })
        .sum();
    let p_value = chi2_sf(chi2, df as f64);
    SampleRatio { chi2, df, p_value, mismatch: p_value < SRM_ALPHA }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warmstart_core::Rng;

    #[test]
    fn delta_method_matches_a_hand_computation() {
        // sessions (clicks, impressions): R = 4 / 20 = 0.2
        let s = [(1.0, 10.0), (0.0, 5.0), (3.0, 5.0)];
        let r = ratio_by_session(&s);
        assert!((r.value - 0.2).abs() < 1e-12);
        // by hand: ȳ = 4/3, x̄ = 20/3; s²_y = 7/3, s²_x = 25/3, s_xy = −5/6 ... var = (s²y − 2R sxy + R² s²x)/(n x̄²)
        let (vy, vx, cxy) = (7.0 / 3.0, 25.0 / 3.0, -2.5 / 3.0 * 1.0);
        let want = ((vy - 2.0 * 0.2 * cxy + 0.04 * vx) / (3.0 * (20.0f64 / 3.0).powi(2))).sqrt();
        assert!((r.se - want).abs() < 1e-12, "{} vs {want}", r.se);
        assert_eq!(ratio_by_session(&[]).value, 0.0);
        assert_eq!(ratio_by_session(&[(1.0, 4.0)]).se, 0.0);
    }

    #[test]
    fn clustered_clicks_widen_the_interval() {
        // every session sees 10 items; half the sessions click everything, half nothing:
        // CTR 0.5 either way, but the session-level variance is far above the binomial one
        let s: Vec<(f64, f64)> = (0..200).map(|i| (if i % 2 == 0 { 10.0 } else { 0.0 }, 10.0)).collect();
        let r = ratio_by_session(&s);
        let binomial = (0.25f64 / 2000.0).sqrt();
        assert!((r.value - 0.5).abs() < 1e-12 && r.se > 3.0 * binomial);
    }

    #[test]
    fn lift_and_its_p_value() {
        let a =
            RatioEstimate { value: 0.11, se: 0.004, lo: 0.0, hi: 0.0, numerator: 0.0, denominator: 0.0, sessions: 0 };
        let c = RatioEstimate { value: 0.10, se: 0.003, ..a };
        let l = lift(&a, &c);
        assert!((l.relative - 0.1).abs() < 1e-12);
        // z = 0.01 / 0.005 = 2
        assert!((l.p_value - 0.045_500_263_9).abs() < 1e-8, "{}", l.p_value);
        assert!(l.lo < 0.1 && l.hi > 0.1);
        assert_eq!(lift(&c, &c).p_value, 1.0);
    }

    #[test]
    fn sample_ratio_flags_a_60_40_split_and_passes_a_fair_one() {
        let mut rng = Rng::new(7);
        let mut fair = [0u64; 2];
        for _ in 0..10_000 {
            fair[rng.below(2)] += 1;
        }
        assert!(!sample_ratio(&fair, &[1.0, 1.0]).mismatch);
        let broken = sample_ratio(&[6_000, 4_000], &[0.5, 0.5]);
        assert!(broken.mismatch && broken.chi2 > 399.0 && broken.df == 1);
        // declared 60/40 and observed 60/40 is fine
        assert!(!sample_ratio(&[6_000, 4_000], &[0.6, 0.4]).mismatch);
    }
}
