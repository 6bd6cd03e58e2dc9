//! Statistics for comparing runs: means, 95% confidence intervals (Student's t) and a
//! paired t-test.

use serde::Serialize;

/// Mean with a 95% confidence interval half-width.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MeanCi {
    /// Sample mean.
    pub mean: f64,
    /// Half-width of the 95% interval (0 with fewer than two samples).
    pub ci95: f64,
    /// Number of samples.
    pub n: usize,
}

/// Mean and 95% confidence interval of `xs`.
pub fn mean_ci(xs: &[f64]) -> MeanCi {
    let n = xs.len();
    if n == 0 {
        return MeanCi { mean: 0.0, ci95: 0.0, n };
    }
    let mean = xs.iter().sum::<f64>() / n as f64;
    if n < 2 {
        return MeanCi { mean, ci95: 0.0, n };
    }
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    MeanCi { mean, ci95: t_quantile(0.975, (n - 1) as f64) * (var / n as f64).sqrt(), n }
}

/// Result of a paired t-test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PairedTest {
    /// Mean of `a - b`.
    pub mean_difference: f64,
    /// t statistic.
    pub t: f64,
    /// Degrees of freedom.
    pub df: f64,
    /// Two-sided p-value.
    pub p_value: f64,
    /// Standard error of the mean difference.
    pub standard_error: f64,
    /// Number of pairs.
    pub n: usize,
}

/// Paired two-sided t-test of `a` against `b` (same length, paired by position).
pub fn paired_t_test(a: &[f64], b: &[f64]) -> PairedTest {
    let n = a.len().min(b.len());
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    let mean = if n > 0 { d.iter().sum::<f64>() / n as f64 } else { 0.0 };
    let df = n.saturating_sub(1) as f64;
    if n < 2 {
        return PairedTest { mean_difference: mean, t: 0.0, df, p_value: 1.0, standard_error: f64::INFINITY, n };
    }
    let var = d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / df;
    if var == 0.0 {
        let p = if mean == 0.0 { 1.0 } else { 0.0 };
        return PairedTest {
            mean_difference: mean,
            t: if mean == 0.0 { 0.0 } else { f64::INFINITY },
            df,
            p_value: p,
            standard_error: 0.0,
            n,
        };
    }
    let standard_error = (var / n as f64).sqrt();
    let t = mean / standard_error;
    PairedTest { mean_difference: mean, t, df, p_value: two_sided_p(t, df), standard_error, n }
}

/// Two-sided p-value of Student's t with `df` degrees of freedom.
pub fn two_sided_p(t: f64, df: f64) -> f64 {
    incomplete_beta(df / 2.0, 0.5, df / (df + t * t)).clamp(0.0, 1.0)
}

/// Quantile `q` (in (0.5, 1)) of Student's t, by bisection on the CDF.
pub fn t_quantile(q: f64, df: f64) -> f64 {
    let (mut lo, mut hi) = (0.0f64, 1000.0f64);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        let cdf = 1.0 - 0.5 * two_sided_p(mid, df);
        if cdf < q {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// Survival function of the chi-square distribution with `df` degrees of freedom:
/// `P(X ≥ x)`.
pub fn chi2_sf(x: f64, df: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    upper_gamma_q(df / 2.0, x / 2.0)
}

/// Two-sided p-value of a standard normal statistic `z`: `P(|Z| ≥ |z|)` (= erfc(|z|/√2)).
pub fn normal_two_sided_p(z: f64) -> f64 {
    if !z.is_finite() {
        return if z.is_nan() { 1.0 } else { 0.0 };
    }
    upper_gamma_q(0.5, z * z / 2.0).clamp(0.0, 1.0)
}

/// Regularised upper incomplete gamma function `Q(a, x)` (series below `a + 1`, continued
/// fraction above).
fn upper_gamma_q(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    let front = (a * x.ln() - x - ln_gamma(a)).exp();
    if x < a + 1.0 {
        let (mut sum, mut term, mut ap) = (1.0 / a, 1.0 / a, a);
        for _ in 0..1000 {
            ap += 1.0;
            term *= x / ap;
            sum += term;
            if term.abs() < sum.abs() * 1e-16 {
                break;
            }
        }
        (1.0 - front * sum).clamp(0.0, 1.0)
    } else {
        // modified Lentz
        let tiny = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / tiny;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..1000 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < tiny {
                d = tiny;
            }
            c = b + an / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            let del = d * c;
            h *= del;
            if (del - 1.0).abs() < 1e-16 {
                break;
            }
        }
        (front * h).clamp(0.0, 1.0)
    }
}

fn ln_gamma(x: f64) -> f64 {
    // Lanczos approximation (g = 7, n = 9)
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + 7.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// Regularised incomplete beta function `I_x(a, b)` (continued fraction).
fn incomplete_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front = (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp();
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_cf(a, b, x) / a
    } else {
        1.0 - front * beta_cf(b, a, 1.0 - x) / b
    }
}

fn beta_cf(a: f64, b: f64, x: f64) -> f64 {
    let tiny = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < tiny {
        d = tiny;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..300 {
        let m = m as f64;
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        if d.abs() < tiny {
            d = tiny;
        }
        c = 1.0 + aa / c;
        if c.abs() < tiny {
            c = tiny;
        }
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        if d.abs() < tiny {
            d = tiny;
        }
        c = 1.0 + aa / c;
        if c.abs() < tiny {
            c = tiny;
        }
        d = 1.0 / d;
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_distribution_matches_tables() {
        assert!((t_quantile(0.975, 4.0) - 2.776).abs() < 1e-3);
        assert!((t_quantile(0.975, 1000.0) - 1.962).abs() < 1e-3);
        assert!((two_sided_p(2.0, 10.0) - 0.0734).abs() < 1e-3);
        let ci = mean_ci(&[1.0, 2.0, 3.0, 4.0, 5.0]);
        assert!((ci.mean - 3.0).abs() < 1e-12 && (ci.ci95 - 2.776 * (2.5f64 / 5.0).sqrt()).abs() < 1e-3);
    }

    #[test]
    fn chi_square_and_normal_tails_match_tables() {
        // scipy.stats.chi2.sf(3.84145882, 1) = 0.05; chi2.sf(10, 3) = 0.018566; chi2.sf(0.5, 4) = 0.973501
        assert!((chi2_sf(3.841_458_82, 1.0) - 0.05).abs() < 1e-8);
        assert!((chi2_sf(10.0, 3.0) - 0.018_566_135).abs() < 1e-8);
        assert!((chi2_sf(0.5, 4.0) - 0.973_500_981).abs() < 1e-8);
        // norm.sf(1.959963985) * 2 = 0.05; 2 * norm.sf(3.5) = 4.6525e-4
        assert!((normal_two_sided_p(1.959_963_985) - 0.05).abs() < 1e-9);
        assert!((normal_two_sided_p(-3.5) - 4.652_581_580e-4).abs() < 1e-11);
        assert_eq!(normal_two_sided_p(0.0), 1.0);
    }

    #[test]
    fn paired_test_detects_a_consistent_difference() {
        let a: Vec<f64> = (0..50).map(|i| 0.3 + (i % 7) as f64 * 0.01).collect();
        let b: Vec<f64> = a.iter().enumerate().map(|(i, x)| x - 0.02 + (i % 3) as f64 * 0.001).collect();
        let t = paired_t_test(&a, &b);
        assert!(t.p_value < 1e-6 && t.mean_difference > 0.0);
        let same = paired_t_test(&a, &a);
        assert_eq!(same.p_value, 1.0);
    }
}
