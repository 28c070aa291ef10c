//! `[train]`: steps (a number, or `"auto"`: until the run's quality stops improving), batches,
//! EMA, seed, logging and checkpoints.

use super::section::{at_least_one, at_most, fields, section};
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

/// How long a run trains: a fixed count of generator steps, or until its quality measure has not
/// improved by `train.min_delta` for `train.patience` (after the plateau schedule's last cut),
/// capped at `train.max_steps`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Steps {
    Fixed(usize),
    Auto(AutoWord),
}

/// The word `auto` (a unit variant of its own, so TOML and `--set` read a bare string).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum AutoWord {
    Auto,
}

impl Steps {
    pub const AUTO: Steps = Steps::Auto(AutoWord::Auto);

    pub fn is_auto(self) -> bool {
        matches!(self, Steps::Auto(_))
    }
}

impl std::fmt::Display for Steps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Steps::Fixed(n) => write!(f, "{n}"),
            Steps::Auto(_) => write!(f, "auto"),
        }
    }
}

section! {
    pub struct TrainLoopConfig {
        /// Generator steps, or "auto" (stop when converged; at most `max_steps`).
        pub steps: Steps = Steps::Fixed(5000),
        /// The cap of an `auto` run (see `max_lr_steps`).
        pub max_steps: usize = 20_000,
        /// The cap of an `auto` run in steps × the configured lr_g, when that is more steps than
        /// `max_steps`: as with `patience`, a slower rate gets proportionally longer (6.0 is 12,000
        /// steps at lr_g 5e-4 and 40,000 at 1.5e-4). 0: `max_steps` alone.
        pub max_lr_steps: f64 = 0.0,
        /// An `auto` run ends with the state of its lowest quality measure (its best evaluation),
        /// not its last: the evaluations that prove a plateau can be worse ones. false: the last.
        pub keep_best: bool = true,
        /// How long without improvement makes a plateau (`auto` steps, `plateau` schedule), in
        /// steps × the configured lr_g: 1.5 is 1,500 steps at lr_g 1e-3 and 15,000 at 1e-4 — Adam
        /// moves a weight about lr per step, so a slower rate gets proportionally longer to show
        /// progress. At least four evaluations either way.
        pub patience: f64 = 1.5,
        /// Relative improvement of the quality measure that counts (0.02: 2 % lower).
        pub min_delta: f64 = 0.02,
        pub batch: usize = 256,
        /// Discriminator steps per generator step.
        pub n_critic: usize = 1,
        /// EMA decay of generator weights (0 = off). Sampling and export use the EMA copy.
        pub ema: f64 = 0.0,
        /// Step at which the EMA starts tracking (copied from G before that).
        pub ema_start: usize = 0,
        pub seed: u64 = 0,
        pub log_every: usize = 50,
        pub eval_every: usize = 1000,
        /// Steps between resumable checkpoints (`keel train --resume`); 0 = none.
        pub checkpoint_every: usize = 500,
        /// Generator samples drawn for each metric snapshot (PacGAN: 2500).
        pub eval_samples: usize = 2500,
        /// Take the gradients of an all-MLP model by hand on the CPU, in fewer and larger products,
        /// instead of through burn's autodiff graph (ReLU/LeakyReLU MLPs without batch norm, noise,
        /// spectral norm or minibatch-std; R1/R2 but no gradient penalty; no weight penalties,
        /// instance noise or augmentation; other settings always use the graph). Sums run in
        /// another order: runs differ from `false` in rounding.
        pub fused_step: bool = true,
    }
}

impl TrainLoopConfig {
    /// The most steps the run can take at the configured rate `lr_g`: its count, or an `auto`
    /// run's cap.
    pub fn cap(&self, lr_g: f64) -> usize {
        match self.steps {
            Steps::Fixed(n) => n,
            Steps::Auto(_) => {
                let by_rate = (self.max_lr_steps / lr_g).ceil();
                match by_rate.is_finite() && by_rate > self.max_steps as f64 {
                    true => by_rate as usize,
                    false => self.max_steps,
                }
            }
        }
    }

    pub fn validate(&self) -> Result<()> {
        at_least_one(&fields!(self, "train":
            batch, n_critic, log_every, eval_every, eval_samples, max_steps))?;
        if !(self.patience > 0.0 && self.patience.is_finite()) {
            bail!(
                "`train.patience` must be a positive number (steps × lr_g), got {}",
                self.patience
            );
        }
        if !(self.max_lr_steps >= 0.0 && self.max_lr_steps.is_finite()) {
            bail!(
                "`train.max_lr_steps` must be 0 or a positive number (steps × lr_g), got {}",
                self.max_lr_steps
            );
        }
        if self.steps == Steps::Fixed(0) {
            bail!("`train.steps` must be at least 1 (or \"auto\")");
        }
        at_most(&fields!(self, "train": batch), 65_536)?;
        at_most(&fields!(self, "train": n_critic), 100)?;
        at_most(&fields!(self, "train": eval_samples), 1_000_000)?;
        if !(0.0..1.0).contains(&self.ema) {
            bail!("`train.ema` must be in [0, 1), got {}", self.ema);
        }
        if !(0.0..1.0).contains(&self.min_delta) {
            bail!(
                "`train.min_delta` must be in [0, 1), got {}",
                self.min_delta
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_auto_cap_grows_for_slower_rates_and_never_shrinks() {
        let mut t = TrainLoopConfig {
            steps: Steps::AUTO,
            max_steps: 12_000,
            max_lr_steps: 6.0,
            ..Default::default()
        };
        assert_eq!(t.cap(5e-4), 12_000);
        assert_eq!(t.cap(1.5e-4), 40_000);
        assert_eq!(t.cap(1.5e-3), 12_000);
        t.max_lr_steps = 0.0;
        assert_eq!(t.cap(1.5e-4), 12_000);
        t.steps = Steps::Fixed(300);
        assert_eq!(t.cap(1e-6), 300);
    }
}
