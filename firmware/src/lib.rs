//! Keel's int8 generator for microcontrollers, `no_std` and allocation-free.
//!
//! The same code runs on the host (where the quantizer writes and checks `.kq8` files and tests
//! compute reference samples) and on the Cortex-M boards under `boards/`:
//! - [`kq8`]: the file format, read in place with every offset bounds-checked;
//! - [`kernels`]: int8 dense (scalar and DSP `SMLAD`), requantization, element-wise tables;
//! - [`latent`]: the seeded sampler of int8 latents;
//! - [`infer`]: one sample through the program in a caller-owned arena;
//! - [`stream`]: the framed, checksummed sample stream;
//! - [`augment`]: labelled windows for the application itself: into a buffer, as an iterator, or
//!   through a `heapless` queue;
//! - [`learn`]: a classifier that adapts on the device from a few labelled windows plus generated
//!   ones (integer MiniRocket-style features, a nearest-class-mean head, a fixed-capacity store);
//! - [`app`]: the generate-and-stream loop a board runs.
#![no_std]

pub mod app;
pub mod augment;
mod error;
pub mod infer;
pub mod kernels;
pub mod kq8;
pub mod latent;
pub mod learn;
pub mod stream;

pub use augment::Augmenter;
pub use error::Error;
pub use infer::Arena;
pub use kernels::Kernel;
pub use kq8::Model;
