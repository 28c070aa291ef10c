//! `keel-run info | generate | bench | quantize | decode | adapt`.

mod adapt;
mod bench;
mod decode;
mod generate;
mod info;
mod quantize;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "keel-run",
    version,
    about = "Run a Keel generator (ONNX, from `keel export`) anywhere: desktop or edge Linux, no burn inside.",
    long_about = "keel-run loads a generator exported by `keel export` (or written at the end of `keel train`), \
checks that it is one, and generates labelled synthetic samples in real units with tract.\n\n\
Start with `keel-run info runs/grid25-stable-s0/generator.onnx`, then \
`keel-run generate runs/grid25-stable-s0/generator.onnx --n 1000 --out samples.csv`."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Show a generator's inputs, outputs, metadata, parameter count and multiply-accumulates per sample.
    Info(info::InfoArgs),
    /// Generate samples in real units to CSV, NPY or stdout; the same seed gives the same bytes.
    Generate(generate::GenerateArgs),
    /// Latency at batch 1 and throughput at batch 256 with one and two threads, optionally beside onnxruntime.
    Bench(bench::BenchArgs),
    /// Quantize to int8 for microcontrollers (`.kq8`, run by the firmware) and report the error it costs.
    Quantize(quantize::QuantizeArgs),
    /// Turn a board's captured sample stream into CSV in real units, with the `.kq8` it runs.
    Decode(decode::DecodeArgs),
    /// Simulate on-device adaptation: the firmware's learner on k real windows per class, with
    /// and without generated ones, on the host (bit-identical to the device).
    Adapt(adapt::AdaptArgs),
}

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Info(a) => info::run(a),
        Command::Generate(a) => generate::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Quantize(a) => quantize::run(a),
        Command::Decode(a) => decode::run(a),
        Command::Adapt(a) => adapt::run(a),
    }
}
