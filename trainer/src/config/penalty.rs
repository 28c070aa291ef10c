//! `[penalty]`: gradient penalties on D (WGAN-GP, R1, R2).

use super::section::{fields, non_negative, section};
use anyhow::Result;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum GpSide {
    /// (‖∇D‖ − 1)², Gulrajani et al.
    TwoSided,
    /// max(0, ‖∇D‖ − 1)², Petzka et al.
    OneSided,
}

section! {
    pub struct PenaltyConfig {
        /// WGAN-GP weight λ on random interpolates of real and fake (0 = off).
        pub gp: f64 = 0.0,
        pub gp_side: GpSide = GpSide::TwoSided,
        /// Target norm of the gradient penalty.
        pub gp_target: f64 = 1.0,
        /// R1 weight γ: (γ/2)·E‖∇D(x_real)‖² (0 = off).
        pub r1: f64 = 0.0,
        /// R2 weight γ: (γ/2)·E‖∇D(x_fake)‖² (0 = off).
        pub r2: f64 = 0.0,
    }
}

impl PenaltyConfig {
    pub fn validate(&self) -> Result<()> {
        non_negative(&fields!(self, "penalty": gp, r1, r2))
    }
}
