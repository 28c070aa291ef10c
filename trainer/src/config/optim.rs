//! `[optim]`: optimizers and learning-rate schedules. Every hyper-parameter is explicit: burn's
//! defaults differ from PyTorch's.

use super::section::{at_least_one, fields, section};
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum OptimizerKind {
    Adam,
    Rmsprop,
    Sgd,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Schedule {
    Constant,
    /// Linear decay from lr to lr·final_lr_fraction over the run.
    Linear,
    /// Cosine decay from lr to lr·final_lr_fraction over the run.
    Cosine,
    /// lr·gamma^(step / step_every).
    Step,
    /// Constant until the run's quality measure stops improving (no `train.min_delta` improvement
    /// for `train.patience` steps × lr_g), then lr·gamma, at most `optim.plateau_cuts` times:
    /// a schedule that does not need the run's length (`train.steps = "auto"`).
    Plateau,
}

impl Schedule {
    /// Whether the rate depends on the run's planned length.
    pub fn needs_length(self) -> bool {
        matches!(self, Schedule::Linear | Schedule::Cosine)
    }
}

section! {
    pub struct OptimConfig {
        pub kind: OptimizerKind = OptimizerKind::Adam,
        /// Generator learning rate (TTUR: set it apart from lr_d).
        pub lr_g: f64 = 1e-4,
        pub lr_d: f64 = 1e-4,
        pub beta1: f64 = 0.5,
        pub beta2: f64 = 0.9,
        pub epsilon: f64 = 1e-8,
        /// RMSprop smoothing constant.
        pub rms_alpha: f64 = 0.99,
        /// Momentum for RMSprop and SGD.
        pub momentum: f64 = 0.0,
        /// SGD momentum dampening.
        pub dampening: f64 = 0.0,
        pub nesterov: bool = false,
        pub schedule: Schedule = Schedule::Constant,
        pub final_lr_fraction: f64 = 0.1,
        pub step_every: usize = 1000,
        pub gamma: f64 = 0.5,
        /// Learning-rate cuts of the `plateau` schedule before an `auto` run may stop.
        pub plateau_cuts: usize = 2,
    }
}

impl OptimConfig {
    pub fn validate(&self) -> Result<()> {
        at_least_one(&fields!(self, "optim": step_every))?;
        if !(self.gamma > 0.0 && self.gamma <= 1.0) {
            bail!("`optim.gamma` must be in (0, 1], got {}", self.gamma);
        }
        for (k, v) in fields!(self, "optim": lr_g, lr_d) {
            if !(v > 0.0 && v.is_finite()) {
                bail!("`{k}` must be a positive number, got {v}");
            }
        }
        Ok(())
    }
}
