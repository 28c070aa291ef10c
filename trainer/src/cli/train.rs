use super::device::{training_device, DeviceKind};
use anyhow::Result;
use keel_trainer::config::{ConfigBuilder, TrainConfig, DEFAULT_RECIPE};
use keel_trainer::data;
use keel_trainer::run::{train, RunOptions};
use std::io::IsTerminal;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    /// Named recipe to start from (see `keel recipes`).
    #[arg(long, default_value = DEFAULT_RECIPE)]
    recipe: String,
    /// TOML file whose keys override the recipe.
    #[arg(long)]
    config: Option<PathBuf>,
    /// A built-in dataset (basicmotions, sines, ring8, grid25), or a file: a labelled-series CSV
    /// (`split,label,c0_t0,…`), a UEA `.ts` file, or a plain N×D CSV.
    #[arg(long, default_value = "basicmotions")]
    data: String,
    /// Generator steps (overrides train.steps).
    #[arg(long)]
    steps: Option<usize>,
    /// Seed of every random draw in the run (overrides train.seed).
    #[arg(long)]
    seed: Option<u64>,
    /// Run directory to write [default: runs/<data>-<recipe>-s<seed>].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Replace the run directory if it exists.
    #[arg(long)]
    force: bool,
    /// Override any config key, e.g. `--set optim.lr_g=2e-4` (repeatable; applied last).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Device to train on.
    #[arg(long, value_enum, default_value_t)]
    device: DeviceKind,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

/// The layered configuration; `series` adds the recipe's series overlay.
fn config(a: &TrainArgs, series: bool) -> Result<TrainConfig> {
    let mut b = ConfigBuilder::new().recipe_for(&a.recipe, series)?;
    if let Some(f) = &a.config {
        b = b.file(f)?;
    }
    if let Some(s) = a.steps {
        b = b.set(&format!("train.steps={s}"))?;
    }
    if let Some(s) = a.seed {
        b = b.set(&format!("train.seed={s}"))?;
    }
    for s in &a.set {
        b = b.set(s)?;
    }
    b.build()
}

pub fn run(a: TrainArgs) -> Result<()> {
    // The seed picks the draw of a built-in set; whether the data are series picks the overlay.
    let seed = config(&a, false)?.train.seed;
    let dataset = data::load(&a.data, seed)?;
    let cfg = config(&a, dataset.shape.is_some())?;
    let device = training_device(a.device)?;
    let out = a.out.unwrap_or_else(|| {
        PathBuf::from(format!(
            "runs/{}-{}-s{}",
            dataset.name, a.recipe, cfg.train.seed
        ))
    });
    let opts = RunOptions {
        out,
        force: a.force,
        recipe: a.recipe.clone(),
        progress: !a.quiet && std::io::stderr().is_terminal(),
    };
    let (dir, summary) = train(&cfg, &dataset, &device, &opts)?;
    print!(
        "trained {} on {} for {} steps in {:.1} s",
        a.recipe, dataset.name, summary.steps, summary.train_seconds
    );
    if let Some(m) = &summary.final_metrics {
        print!(
            ": {}/{} modes, {:.1}% HQ, reverse KL {}",
            m.modes,
            m.total_modes,
            m.hq_pct,
            m.reverse_kl
                .map_or("undefined (no HQ sample)".into(), |k| format!("{k:.3}"))
        );
    }
    println!("\nrun directory: {}", dir.display());
    println!(
        "  samples plot {}, losses {}, metrics {}",
        dir.join("samples.png").display(),
        dir.join("losses.png").display(),
        dir.join("metrics.csv").display()
    );
    println!(
        "  generator for any ONNX runtime: {}",
        dir.join(keel_trainer::export::ONNX_FILE).display()
    );
    println!(
        "  draw more: keel-run generate {} --n 1000 --out samples.csv",
        dir.join(keel_trainer::export::ONNX_FILE).display()
    );
    Ok(())
}
