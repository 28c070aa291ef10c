//! Generator and discriminator. Every D layer knows its vector-Jacobian product so that gradient
//! penalties can put ∇ₓD inside the graph (burn has first-order autodiff only).

mod activation;
mod batchnorm;
mod discriminator;
pub mod generator;
mod ids;
mod init;
mod spectral;
mod temporal;

pub use activation::Act;
pub use batchnorm::GenBatchNorm;
pub use discriminator::{DWeights, Discriminator};
pub use generator::Generator;
pub use ids::{DISCRIMINATOR_IDS, GENERATOR_IDS};
pub use init::{init_conv, init_linear};
pub use spectral::{power_iteration, spectral_sigma};
