//! `[model]`: the generator and discriminator architectures.

use super::section::{at_least_one, at_most, fields, section};
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Activation {
    Relu,
    LeakyRelu,
    Tanh,
}

/// The generator's architecture.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum GenKind {
    /// Hidden Linear layers, then a flat output.
    Mlp,
    /// Series only: Linear to `[g_conv_channels, T₀]`, then blocks of nearest ×2 upsampling and
    /// Conv1d, a Conv1d to the data's channels, cropped to its length.
    Conv,
}

section! {
    pub struct ModelConfig {
        /// Size of the latent vector z ~ N(0, I).
        pub latent: usize = 2,
        /// `mlp` or `conv` (series only: a temporal generator, small enough for a microcontroller).
        pub g_kind: GenKind = GenKind::Mlp,
        pub g_width: usize = 128,
        pub g_depth: usize = 3,
        pub g_activation: Activation = Activation::Relu,
        pub g_batchnorm: bool = false,
        /// Learned per-unit noise injection after each hidden layer of G (StyleGAN-style).
        pub g_noise: bool = false,
        /// Conv G: upsampling blocks (each doubles the length), their channels and odd kernel size.
        pub g_conv_blocks: usize = 3,
        pub g_conv_channels: usize = 32,
        pub g_conv_kernel: usize = 5,
        pub d_width: usize = 128,
        pub d_depth: usize = 3,
        pub d_activation: Activation = Activation::Relu,
        /// Negative slope of LeakyReLU (both networks).
        pub leaky_slope: f64 = 0.2,
        /// Minibatch standard deviation feature before D's last layer.
        pub d_minibatch_std: bool = false,
        /// Spectral normalisation of every D layer, one power iteration per step.
        pub spectral_norm: bool = false,
        /// Series only: Conv1d layers (stride 2, LeakyReLU/… as d_activation) before D's MLP (0 = none).
        pub d_conv: usize = 0,
        pub d_conv_channels: usize = 32,
        /// Odd kernel size of D's convolutions.
        pub d_conv_kernel: usize = 5,
    }
}

impl ModelConfig {
    pub fn validate(&self) -> Result<()> {
        at_least_one(&fields!(self, "model": latent, g_width, d_width))?;
        at_most(&fields!(self, "model": latent), 4096)?;
        at_most(&fields!(self, "model": g_width, d_width), 8192)?;
        at_most(&fields!(self, "model": g_depth, d_depth), 64)?;
        at_most(&fields!(self, "model": d_conv), 16)?;
        at_most(&fields!(self, "model": d_conv_channels), 1024)?;
        at_most(&fields!(self, "model": d_conv_kernel), 255)?;
        at_most(&fields!(self, "model": g_conv_blocks), 12)?;
        at_most(&fields!(self, "model": g_conv_channels), 1024)?;
        at_most(&fields!(self, "model": g_conv_kernel), 255)?;
        if self.g_kind == GenKind::Conv
            && (self.g_conv_channels == 0 || self.g_conv_kernel.is_multiple_of(2))
        {
            bail!("`model.g_conv_channels` must be at least 1 and `model.g_conv_kernel` odd");
        }
        if self.d_conv > 0 && (self.d_conv_channels == 0 || self.d_conv_kernel.is_multiple_of(2)) {
            bail!("`model.d_conv_channels` must be at least 1 and `model.d_conv_kernel` odd");
        }
        Ok(())
    }
}
