//! Command-line interface: `keel train | sample | export | eval | recipes | sweep | bench`.

mod bench;
mod device;
mod eval;
mod export;
mod jobs;
mod sample;
mod slurm;
mod speed;
mod sweep;
mod train;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "keel",
    version,
    about = "Train class-conditional GANs that do not fall over, and carry the generator to a microcontroller.",
    long_about = "Keel trains GANs on burn with the stability toolkit GAN practice relies on (NS/WGAN/hinge/LS/RaGAN \
losses, GP/R1/R2 penalties, spectral norm, EMA, TTUR, …), named recipes as TOML files, and the PacGAN mode metrics.\n\n\
Start with `keel train --data grid25`, then look at the run directory it prints."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train a GAN and write a run directory (config, metrics.csv, plots, generator, summary.json).
    Train(train::TrainArgs),
    /// Draw samples from a run's generator (the EMA copy), in the data's own units, one per CSV row.
    Sample(sample::SampleArgs),
    /// Export a run's generator (the EMA copy) to ONNX with Keel's metadata, for `keel-run` and any
    /// ONNX runtime. `keel train` already writes RUN/generator.onnx; this re-exports or writes elsewhere.
    Export(export::ExportArgs),
    /// Evaluate a series run: TSTR/TRTR, discriminative and predictive scores, augmentation gain with
    /// k real series per class, plots; writes RUN_DIR/eval/{report.md, eval.json, *.png}.
    Eval(eval::EvalArgs),
    /// List the named recipes and what each one sets.
    Recipes {
        /// Print the full TOML of this recipe.
        name: Option<String>,
    },
    /// The stability sweep: train recipes × datasets × grid values × seeds, judge each run by its
    /// dataset's success rule, write a success-rate table (sweep.md) and heat map (heatmap.png).
    /// `--shard I/N` runs one slice (for a Slurm array or a Kubernetes indexed Job);
    /// `keel sweep merge DIR` joins the slices.
    Sweep(sweep::SweepArgs),
    /// Benchmarks: mode coverage over seeds, and speed against the PyTorch peer.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Train(a) => train::run(a),
        Command::Sample(a) => sample::run(a),
        Command::Export(a) => export::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Recipes { name } => recipes(name),
        Command::Bench(b) => bench::run(b),
        Command::Sweep(a) => sweep::run(a),
    }
}

fn recipes(name: Option<String>) -> Result<()> {
    use keel_trainer::config::{recipe, DEFAULT_RECIPE, RECIPES};
    if let Some(name) = name {
        print!("{}", recipe(&name)?.toml);
        return Ok(());
    }
    for r in RECIPES {
        let t: toml::Table = toml::from_str(r.toml)?;
        let desc = t.get("description").and_then(|d| d.as_str()).unwrap_or("");
        let mark = if r.name == DEFAULT_RECIPE {
            " (default)"
        } else {
            ""
        };
        println!("{:<12} {desc}{mark}", r.name);
    }
    println!("\n`keel recipes NAME` prints one; `keel train --recipe NAME --set section.key=value` overrides any key.");
    Ok(())
}
