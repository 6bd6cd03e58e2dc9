//! Learning-rate schedules shared by the trainers.

/// Where [`warmup_cosine`] ends, as a share of the peak learning rate.
pub const WARMUP_COSINE_FLOOR: f64 = 0.05;

/// Linear warm-up over `warmup` steps to `peak`, then cosine decay to
/// [`WARMUP_COSINE_FLOOR`] of `peak` at step `total` (0-based `step`).
pub fn warmup_cosine(step: usize, warmup: usize, total: usize, peak: f64) -> f64 {
    let warmup = warmup.max(1);
    if step < warmup {
        return peak * (step + 1) as f64 / warmup as f64;
    }
    let p = ((step - warmup) as f64 / total.saturating_sub(warmup).max(1) as f64).min(1.0);
    peak * (WARMUP_COSINE_FLOOR + (1.0 - WARMUP_COSINE_FLOOR) * 0.5 * (1.0 + (std::f64::consts::PI * p).cos()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warms_up_then_decays_to_five_percent() {
        assert!((warmup_cosine(0, 4, 100, 1.0) - 0.25).abs() < 1e-12);
        assert!((warmup_cosine(3, 4, 100, 1.0) - 1.0).abs() < 1e-12);
        assert!((warmup_cosine(4, 4, 100, 1.0) - 1.0).abs() < 1e-12);
        assert!((warmup_cosine(52, 4, 100, 2.0) - 2.0 * 0.525).abs() < 1e-12);
        assert!((warmup_cosine(100, 4, 100, 1.0) - 0.05).abs() < 1e-12);
        assert!((warmup_cosine(500, 4, 100, 1.0) - 0.05).abs() < 1e-12);
    }
}
