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

section! {
    pub struct ModelConfig {
        /// Size of the latent vector z ~ N(0, I).
        pub latent: usize = 2,
        pub g_width: usize = 128,
        pub g_depth: usize = 3,
        pub g_activation: Activation = Activation::Relu,
        pub g_batchnorm: bool = false,
        /// Learned per-unit noise injection after each hidden layer of G (StyleGAN-style).
        pub g_noise: bool = false,
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
        if self.d_conv > 0 && (self.d_conv_channels == 0 || self.d_conv_kernel.is_multiple_of(2)) {
            bail!("`model.d_conv_channels` must be at least 1 and `model.d_conv_kernel` odd");
        }
        Ok(())
    }
}
