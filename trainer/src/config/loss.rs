//! `[loss]`: the adversarial objective.

use super::section::section;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum LossKind {
    /// Non-saturating: G maximises log D(G(z)).
    NonSaturating,
    /// The original minimax game: G minimises log(1 - D(G(z))).
    Minimax,
    Wasserstein,
    Hinge,
    LeastSquares,
    /// Relativistic average GAN (standard/BCE form).
    RelativisticAverage,
}

section! {
    pub struct LossConfig {
        pub kind: LossKind = LossKind::NonSaturating,
        /// One-sided label smoothing: real target 1 - s (BCE and least-squares losses).
        pub label_smoothing: f64 = 0.0,
    }
}

impl LossConfig {
    pub fn validate(&self) -> Result<()> {
        if !(0.0..1.0).contains(&self.label_smoothing) {
            bail!(
                "`loss.label_smoothing` must be in [0, 1), got {}",
                self.label_smoothing
            );
        }
        Ok(())
    }
}
