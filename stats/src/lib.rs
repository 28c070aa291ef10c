//! Summary statistics over repeated draws: mean ± standard deviation, and the paired comparison of
//! two arms measured on the same draws (used by `keel eval`'s gain study and `keel-run adapt`).

mod paired;

pub use paired::{paired, wilcoxon, Paired};
use serde::Serialize;

/// Mean and sample standard deviation of `n` values.
#[derive(Debug, Clone, Serialize)]
pub struct MeanStd {
    pub mean: f64,
    pub std: f64,
    pub n: usize,
}

impl MeanStd {
    pub fn of(v: &[f64]) -> Self {
        let n = v.len().max(1) as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
        Self {
            mean,
            std: var.sqrt(),
            n: v.len(),
        }
    }
}
