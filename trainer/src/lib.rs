//! Keel's trainer: class-conditional GANs on burn with the stability toolkit GAN practice relies on.

pub mod config;
pub mod data;
pub mod model;
pub mod objective;
pub mod train;
pub mod eval;
pub mod sample;
pub mod rundir;
pub mod run;
