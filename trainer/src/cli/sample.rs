use anyhow::{bail, Context, Result};
use burn::tensor::Device;
use keel_trainer::artifacts::load_generator;
use keel_trainer::rundir::write_atomic;
use keel_trainer::sample::sample;
use std::io::Write;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct SampleArgs {
    /// A run directory written by `keel train`.
    run: PathBuf,
    /// Number of samples.
    #[arg(long)]
    n: usize,
    /// Seed of the latent draws.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output CSV file, or `-` for stdout.
    #[arg(long, default_value = "-")]
    out: String,
}

pub fn run(a: SampleArgs) -> Result<()> {
    if a.n == 0 {
        bail!("--n must be at least 1");
    }
    let device = Device::flex();
    let (_, meta, g) = load_generator(&a.run, &device)?;
    if g.classes > 0 {
        bail!(
            "{} holds a conditional generator: draw by class with `keel-run generate {}/generator.onnx --class NAME`",
            a.run.display(),
            a.run.display()
        );
    }
    let points = sample(&g, &meta.normalizer, a.n, a.seed, &device);
    let mut text = String::with_capacity(points.len() * 12);
    for row in points.chunks_exact(meta.output_dim) {
        let cells: Vec<String> = row.iter().map(|v| v.to_string()).collect();
        text.push_str(&cells.join(","));
        text.push('\n');
    }
    if a.out == "-" {
        std::io::stdout()
            .lock()
            .write_all(text.as_bytes())
            .context("cannot write to stdout")?;
    } else {
        write_atomic(std::path::Path::new(&a.out), text.as_bytes())?;
        eprintln!("wrote {} samples to {}", a.n, a.out);
    }
    Ok(())
}
