//! Which burn device trains: the flex CPU backend always, GPUs when built with their feature.

use anyhow::{bail, Result};
use burn::tensor::Device;

#[derive(clap::ValueEnum, Clone, Copy, Debug, Default)]
pub enum DeviceKind {
    /// burn's flex backend (pure Rust, SIMD): what tests and CI use.
    #[default]
    Cpu,
    /// NVIDIA GPU (build with `--features cuda`).
    Cuda,
    /// Any GPU through wgpu (build with `--features wgpu`).
    Wgpu,
}

/// The autodiff device for training.
pub fn training_device(kind: DeviceKind) -> Result<Device> {
    let base = match kind {
        DeviceKind::Cpu => Device::flex(),
        #[cfg(feature = "cuda")]
        DeviceKind::Cuda => Device::cuda(0),
        #[cfg(feature = "wgpu")]
        DeviceKind::Wgpu => Device::wgpu(Default::default()),
        #[allow(unreachable_patterns)]
        other => bail!("this keel was built without {other:?} support; rebuild with `cargo build --release --features {}`", format!("{other:?}").to_lowercase()),
    };
    Ok(base.autodiff())
}
