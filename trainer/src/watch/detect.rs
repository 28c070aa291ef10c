//! The statistics behind the detectors, as pure functions of recorded values.

/// Median of `v` (NaN-free), 0 when empty.
pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        0.5 * (s[n / 2 - 1] + s[n / 2])
    }
}

/// A gradient-norm spike: the largest of the recent norms against a window of earlier ones.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spike {
    /// Robust z of the largest recent log-norm.
    pub z: f64,
    /// The largest recent norm over the window's median.
    pub ratio: f64,
    /// Recent norms above both thresholds (`z_min` robust σ and `ratio_min` × the median).
    pub steps: usize,
}

/// The largest of `recent` against the `history` window, and how many of `recent` pass both
/// thresholds. Robust σ is 1.4826·MAD of the logs (gradient norms are log-normal-ish and
/// heavy-tailed, so mean and σ would hide a spike in its own window). None with under 10 norms.
pub fn spike(history: &[f64], recent: &[f64], z_min: f64, ratio_min: f64) -> Option<Spike> {
    let logs: Vec<f64> = history
        .iter()
        .filter(|v| **v > 0.0)
        .map(|v| v.ln())
        .collect();
    let top = recent.iter().copied().fold(f64::NAN, f64::max);
    if logs.len() < 10 || top.is_nan() || top <= 0.0 {
        return None;
    }
    let med = median(&logs);
    let dev: Vec<f64> = logs.iter().map(|l| (l - med).abs()).collect();
    // A floor on σ: a window of near-identical norms must not turn noise into a spike.
    let sigma = (1.4826 * median(&dev)).max(0.05);
    let above =
        |v: f64| v > 0.0 && (v.ln() - med) / sigma > z_min && (v.ln() - med).exp() > ratio_min;
    Some(Spike {
        z: (top.ln() - med) / sigma,
        ratio: (top.ln() - med).exp(),
        steps: recent.iter().filter(|v| above(**v)).count(),
    })
}

/// Oscillation of per-check means after removing their linear trend (a loss that drifts is not
/// swinging): (their std relative to `scale`, whether the second half swings at least as much as
/// the first — a swing that is not decaying). `scale` is the larger of the loss's mean magnitude
/// and its step-to-step noise within a check, so a loss near zero (a critic's) is judged against
/// its noise.
pub fn oscillation(checks: &[f64], noise: f64) -> (f64, bool) {
    let n = checks.len();
    if n < 4 {
        return (0.0, false);
    }
    let xm = (n - 1) as f64 / 2.0;
    let ym = checks.iter().sum::<f64>() / n as f64;
    let sxx: f64 = (0..n).map(|i| (i as f64 - xm).powi(2)).sum();
    let slope = (0..n)
        .map(|i| (i as f64 - xm) * (checks[i] - ym))
        .sum::<f64>()
        / sxx;
    let resid: Vec<f64> = (0..n)
        .map(|i| checks[i] - ym - slope * (i as f64 - xm))
        .collect();
    let rms = |v: &[f64]| (v.iter().map(|x| x * x).sum::<f64>() / v.len() as f64).sqrt();
    let scale = (checks.iter().map(|v| v.abs()).sum::<f64>() / n as f64).max(noise);
    let (a, b) = resid.split_at(n / 2);
    (rms(&resid) / scale.max(1e-12), rms(b) >= rms(a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenfold_jump_is_a_spike_and_noise_is_not() {
        let history: Vec<f64> = (0..200)
            .map(|i| 1.0 + 0.2 * ((i as f64) * 0.7).sin())
            .collect();
        let s = spike(&history, &[1.1, 0.9], 8.0, 20.0).unwrap();
        assert!(s.z < 3.0 && s.ratio < 1.5 && s.steps == 0, "noise: {s:?}");
        let s = spike(&history, &[1.0, 50.0], 8.0, 20.0).unwrap();
        assert!(s.z > 8.0 && s.ratio > 20.0 && s.steps == 1, "spike: {s:?}");
        let s = spike(&history, &[60.0, 1.0, 50.0, 10.0], 8.0, 20.0).unwrap();
        assert_eq!(s.steps, 2, "two steps above 20x, not the one at 10x: {s:?}");
        assert!(
            spike(&history[..5], &[50.0], 8.0, 20.0).is_none(),
            "too little history"
        );
    }

    #[test]
    fn a_growing_swing_oscillates_and_a_decaying_one_does_not() {
        let growing: Vec<f64> = (0..20)
            .map(|i| 1.0 + (i as f64 / 10.0) * if i % 2 == 0 { 1.0 } else { -1.0 })
            .collect();
        let (rel, sustained) = oscillation(&growing, 0.01);
        assert!(rel > 0.5 && sustained, "{rel} {sustained}");
        let decaying: Vec<f64> = growing.iter().rev().copied().collect();
        assert!(!oscillation(&decaying, 0.01).1);
        // A steady drift is not a swing; a critic's loss near 0 is judged against its noise.
        let drift: Vec<f64> = (0..20).map(|i| 2.0 - 0.05 * i as f64).collect();
        assert!(oscillation(&drift, 0.01).0 < 1e-9);
        let critic: Vec<f64> = (0..20).map(|i| 0.001 * ((i % 3) as f64 - 1.0)).collect();
        assert!(oscillation(&critic, 0.05).0 < 0.1);
    }
}
