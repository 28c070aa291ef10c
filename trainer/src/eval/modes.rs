//! The VEEGAN / PacGAN protocol for Gaussian mixtures: assign each sample to its nearest mode; it is
//! high quality (HQ) within 3 std; a mode is captured with ≥ 1 HQ sample; reverse KL is
//! KL(HQ mode histogram ‖ uniform). The stricter coverage counts modes holding ≥ 1 % of samples.

use crate::data::Mixture;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModeMetrics {
    pub modes: usize,
    /// Modes holding at least 1 % of all samples as HQ samples.
    pub modes_strict: usize,
    pub hq_pct: f64,
    /// KL(p ‖ U) in nats over HQ samples; `None` when no sample is HQ (undefined).
    pub reverse_kl: Option<f64>,
    pub total_modes: usize,
    pub counts: Vec<usize>,
}

/// `samples` are 2-D points, row-major, in data units.
pub fn mode_metrics(samples: &[f32], mixture: &Mixture) -> ModeMetrics {
    let k = mixture.centres.len();
    let n = samples.len() / 2;
    let mut counts = vec![0usize; k];
    let mut hq = 0usize;
    for p in samples.chunks_exact(2) {
        let (x, y) = (p[0] as f64, p[1] as f64);
        let (best, dist2) = mixture
            .centres
            .iter()
            .enumerate()
            .map(|(i, c)| (i, (x - c[0]).powi(2) + (y - c[1]).powi(2)))
            .fold((0, f64::INFINITY), |a, b| if b.1 < a.1 { b } else { a });
        if dist2.sqrt() <= 3.0 * mixture.std {
            counts[best] += 1;
            hq += 1;
        }
    }
    let reverse_kl = if hq == 0 {
        None
    } else {
        Some(
            counts
                .iter()
                .filter(|&&c| c > 0)
                .map(|&c| {
                    let p = c as f64 / hq as f64;
                    p * (k as f64 * p).ln()
                })
                .sum(),
        )
    };
    let strict = counts
        .iter()
        .filter(|&&c| c as f64 >= 0.01 * n as f64)
        .count();
    ModeMetrics {
        modes: counts.iter().filter(|&&c| c > 0).count(),
        modes_strict: strict,
        hq_pct: 100.0 * hq as f64 / n.max(1) as f64,
        reverse_kl,
        total_modes: k,
        counts,
    }
}
