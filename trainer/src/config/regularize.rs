//! `[regularize]`: weight clipping, gradient clipping, L1/L2 and instance noise.

use super::section::{fields, non_negative, section};
use anyhow::Result;

section! {
    pub struct RegularizeConfig {
        /// WGAN weight clipping of D's parameters to [-c, c] after every D step (0 = off).
        pub weight_clip: f64 = 0.0,
        /// Clip each network's gradients by their *global* L2 norm (0 = off).
        pub grad_clip: f64 = 0.0,
        pub l1_g: f64 = 0.0,
        pub l2_g: f64 = 0.0,
        pub l1_d: f64 = 0.0,
        pub l2_d: f64 = 0.0,
        /// Std of Gaussian instance noise added to every D input, in normalised units (0 = off).
        pub instance_noise: f64 = 0.0,
        /// Steps over which instance noise anneals linearly to 0 (0 = constant).
        pub instance_noise_anneal: usize = 0,
    }
}

impl RegularizeConfig {
    pub fn validate(&self) -> Result<()> {
        non_negative(&fields!(self, "regularize":
            weight_clip, grad_clip, l1_g, l2_g, l1_d, l2_d, instance_noise))
    }
}
