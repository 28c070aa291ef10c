//! `[train]`: steps, batches, EMA, seed, logging and checkpoints.

use super::section::{at_least_one, at_most, fields, section};
use anyhow::{bail, Result};

section! {
    pub struct TrainLoopConfig {
        /// Generator steps.
        pub steps: usize = 5000,
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
    }
}

impl TrainLoopConfig {
    pub fn validate(&self) -> Result<()> {
        at_least_one(&fields!(self, "train":
            batch, n_critic, log_every, eval_every, eval_samples, steps))?;
        at_most(&fields!(self, "train": batch), 65_536)?;
        at_most(&fields!(self, "train": n_critic), 100)?;
        at_most(&fields!(self, "train": eval_samples), 1_000_000)?;
        if !(0.0..1.0).contains(&self.ema) {
            bail!("`train.ema` must be in [0, 1), got {}", self.ema);
        }
        Ok(())
    }
}
