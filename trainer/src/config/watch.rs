//! `[watch]`: the stability watchdog. Detectors are checked every `every` steps (NaN/Inf every
//! step), each with a threshold below, and the policy answers them (see docs/watchdog.md).

use super::section::{at_least_one, at_most, fields, section};
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

/// What the watchdog does when a detector fires.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum WatchPolicy {
    /// Log the event and go on.
    Warn,
    /// Log, roll back to the last healthy snapshot, apply the event's remedy, go on.
    Recover,
    /// Log and end the run with a verdict at the first event.
    Stop,
}

section! {
    pub struct WatchConfig {
        pub enabled: bool = true,
        pub policy: WatchPolicy = WatchPolicy::Recover,
        /// Generator steps between checks.
        pub every: usize = 50,
        /// Checks in the sliding window of the spike and oscillation detectors.
        pub window: usize = 20,
        /// Consecutive failing checks before the vanishing and oscillation detectors fire …
        pub patience: usize = 3,
        /// … and the collapse detectors (coverage and diversity): healthy runs lose modes for a few
        /// hundred steps (at high learning rates for 1,500) and find them again …
        pub collapse_patience: usize = 40,
        /// … and mode snapshots in a row (`train.eval_every` apart) for the mode count.
        pub mode_patience: usize = 2,
        /// Steps before the slow detectors start (a GAN's first steps look like all of them).
        pub warmup: usize = 1000,
        /// Gradient spike: a step's log-norm this many robust σ (1.4826·MAD) above the median of the
        /// last `window` × `every` steps (judged once half of them are there) …
        pub spike_z: f64 = 8.0,
        /// … and this many times the window median.
        pub spike_ratio: f64 = 20.0,
        /// … at this many steps of one check, or of two checks in a row (a lone spiking step is
        /// confirmed or cleared by the next check).
        pub spike_steps: usize = 2,
        /// Parameter runaway: a network's weight norm this many times its norm at the last healthy snapshot.
        pub param_growth: f64 = 4.0,
        /// Vanishing: D's sign accuracy (ADA's r_t, both sides) at or above this over a check …
        pub vanish_acc: f64 = 0.99,
        /// … and G's gradient norm below this fraction of its median over healthy checks …
        pub vanish_grad: f64 = 0.01,
        /// … or, for logit losses, the margin D(real) − D(fake) above this many logits.
        pub vanish_margin: f64 = 12.0,
        /// Oscillation: standard deviation of D's per-check mean loss over the window, detrended and
        /// relative to its mean magnitude (or its step noise, if larger), above this, and not smaller
        /// in the window's second half than in its first.
        pub oscillation: f64 = 0.5,
        /// Collapse: samples drawn (fixed latents) and real rows compared at each check.
        pub samples: usize = 256,
        /// Collapse: coverage (Naeem et al. 2020, k = 5) below this fraction of its best so far, once
        /// that best has reached `coverage_min` …
        pub coverage_drop: f64 = 0.7,
        pub coverage_min: f64 = 0.5,
        /// … or fake/real mean pairwise distance below this, once it has been twice as high at a
        /// check past `warmup`; or
        /// captured modes (datasets with known modes) below this fraction of their best so far.
        pub min_diversity: f64 = 0.2,
        pub mode_drop: f64 = 0.2,
        /// Modes are judged only against snapshots with at least this HQ % (while most samples are
        /// between modes, one stray sample counts as a mode).
        pub mode_min_hq: f64 = 50.0,
        /// Steps between in-memory snapshots (a snapshot is trusted once the next check passes too).
        pub snapshot_every: usize = 500,
        /// Rollbacks before the run gives up with a verdict.
        pub max_retries: usize = 4,
        /// Remedy: learning rates × this (divergence, collapse, oscillation).
        pub lr_factor: f64 = 0.5,
        /// Remedy: R1/R2/GP weights × this (vanishing, collapse); R1 = `r1_floor` when none is set.
        pub reg_factor: f64 = 4.0,
        pub r1_floor: f64 = 0.1,
        /// Remedy: instance noise σ raised by this (vanishing; 0 = never).
        pub noise_step: f64 = 0.0,
        /// Remedy: augmentation probability raised by this (vanishing, with augmentation on).
        pub aug_step: f64 = 0.1,
    }
}

impl WatchConfig {
    pub fn validate(&self) -> Result<()> {
        at_most(&fields!(self, "watch": samples), 100_000)?;
        at_least_one(&fields!(self, "watch":
            every, window, patience, collapse_patience, mode_patience, samples, snapshot_every,
            spike_steps))?;
        if self.samples < 6 {
            bail!("`watch.samples` must be at least 6 (coverage uses 5 nearest neighbours)");
        }
        if !self.snapshot_every.is_multiple_of(self.every) {
            bail!(
                "`watch.snapshot_every` ({}) must be a multiple of `watch.every` ({})",
                self.snapshot_every,
                self.every
            );
        }
        if !(self.lr_factor > 0.0 && self.lr_factor <= 1.0) || self.reg_factor < 1.0 {
            bail!("`watch.lr_factor` must be in (0, 1] and `watch.reg_factor` ≥ 1");
        }
        Ok(())
    }
}
