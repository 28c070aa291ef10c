//! Keel's trainer: class-conditional GANs on burn with the stability toolkit GAN practice relies on.

pub mod artifacts;
pub mod checkpoint;
pub mod config;
pub mod converge;
/// The data readers live in their own crate (no burn: fuzzing them builds in seconds).
pub use keel_data as data;
pub mod eval;
pub mod export;
pub mod model;
pub mod objective;
pub mod report;
pub mod run;
pub mod rundir;
pub mod sample;
pub mod sweep;
pub mod train;
pub mod watch;
