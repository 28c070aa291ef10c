//! `[augment]`: augmentations of every D input, real and fake alike (DiffAugment: differentiable,
//! so G learns through them), for series data. Each transform whose strength is > 0 is applied to
//! each sample with probability `p`; with `ada_target` > 0, `p` follows ADA's controller.

use super::section::{at_most, fields, non_negative, section};
use anyhow::{bail, Result};

section! {
    pub struct AugmentConfig {
        /// Probability of each transform per sample (the start value when ADA is on).
        pub p: f64 = 0.0,
        /// ADA: raise p when E[sign D(real)] is above this target, lower it below (0 = fixed p).
        pub ada_target: f64 = 0.0,
        /// ADA: real images for p to move from 0 to 1 (Karras et al. use 500k on images).
        pub ada_speed: f64 = 50_000.0,
        /// ADA: ceiling of p (transforms applied too often leak into what G learns).
        pub p_max: f64 = 1.0,
        /// ADA: D updates between adjustments of p.
        pub ada_interval: usize = 4,
        /// Jitter: σ of Gaussian noise added to every value (normalised units).
        pub jitter: f64 = 0.03,
        /// Scaling: σ of a per-channel factor around 1.
        pub scaling: f64 = 0.1,
        /// Time shift: largest circular shift, as a fraction of the length.
        pub time_shift: f64 = 0.1,
        /// Magnitude warp: σ of the smooth multiplicative curve's knots around 1.
        pub magnitude_warp: f64 = 0.2,
        /// Magnitude warp: interior knots of the curve.
        pub warp_knots: usize = 4,
    }
}

impl AugmentConfig {
    /// Whether augmentation can ever be applied.
    pub fn enabled(&self) -> bool {
        self.p > 0.0 || self.ada_target > 0.0
    }

    pub fn validate(&self) -> Result<()> {
        at_most(&fields!(self, "augment": warp_knots), 1024)?;
        for (k, v) in fields!(self, "augment": p, ada_target) {
            if !(0.0..=1.0).contains(&v) {
                bail!("`{k}` must be in [0, 1], got {v}");
            }
        }
        non_negative(&fields!(self, "augment": jitter, scaling, time_shift, magnitude_warp))?;
        if self.time_shift > 0.5 {
            bail!(
                "`augment.time_shift` must be ≤ 0.5 (a fraction of the length), got {}",
                self.time_shift
            );
        }
        if self.ada_speed.is_nan()
            || self.ada_speed <= 0.0
            || self.ada_interval == 0
            || self.warp_knots == 0
        {
            bail!("`augment.ada_speed`, `augment.ada_interval` and `augment.warp_knots` must be positive");
        }
        Ok(())
    }
}
