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
        return PairedTest { mean_difference: mean, t: 0.0, df, p_value: 1.0, n };
    }
    let var = d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / df;
    if var == 0.0 {
        let p = if mean == 0.0 { 1.0 } else { 0.0 };
        return PairedTest {
            mean_difference: mean,
            t: if mean == 0.0 { 0.0 } else { f64::INFINITY },
            df,
            p_value: p,
            n,
        };
    }
    let t = mean / (var / n as f64).sqrt();
    PairedTest { mean_difference: mean, t, df, p_value: two_sided_p(t, df), n }
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
    fn paired_test_detects_a_consistent_difference() {
        let a: Vec<f64> = (0..50).map(|i| 0.3 + (i % 7) as f64 * 0.01).collect();
        let b: Vec<f64> = a.iter().enumerate().map(|(i, x)| x - 0.02 + (i % 3) as f64 * 0.001).collect();
        let t = paired_t_test(&a, &b);
        assert!(t.p_value < 1e-6 && t.mean_difference > 0.0);
        let same = paired_t_test(&a, &a);
        assert_eq!(same.p_value, 1.0);
    }
}
