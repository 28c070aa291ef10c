//! The trainer's integration tests, one binary (it links burn once). `gradients.rs` is a binary of
//! its own: it configures the process's flex device for f64, which every other test here runs in f32.

mod common;

mod cli;
mod converge;
mod data_and_metrics;
mod hostile_inputs;
mod resume;
mod series;
mod slurm;
mod sweep;
mod toolkit;
mod watchdog;
