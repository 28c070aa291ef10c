//! The int8 kernels, one file per layer kind. Each has a portable path that the host runs and,
//! where the core has the DSP extension (Cortex-M4/M7), an `asm!` path with the same results.

pub mod conv;
pub mod dense;
pub mod requant;
pub mod table;

/// Which dot-product code a dense layer runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Kernel {
    /// Plain Rust: every core, and the host.
    Scalar,
    /// `SXTB16` + `SMLAD` dual 16-bit multiply-accumulates (Arm DSP extension, the `dsp` feature
    /// on an Arm target). Falls back to `Scalar` elsewhere, so host tests can name it.
    Dsp,
}

impl Kernel {
    /// The fastest kernel this build has.
    pub const fn best() -> Kernel {
        if cfg!(all(target_arch = "arm", feature = "dsp")) {
            Kernel::Dsp
        } else {
            Kernel::Scalar
        }
    }
}
