use anyhow::{bail, Result};
use indicatif::{ProgressBar, ProgressStyle};
use keel_runtime::output::{Destination, SampleWriter};
use keel_runtime::{generate, ClassChoice, Generator, Request};
use std::io::IsTerminal;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct GenerateArgs {
    /// The generator (ONNX file written by `keel export`).
    model: PathBuf,
    /// Samples per class (with `--class all`, this many of each class).
    #[arg(long)]
    n: usize,
    /// A class name, or `all` for every class in order. Unconditional generators take `all`.
    #[arg(long, default_value = "all")]
    class: String,
    /// Seed of the latents. The same seed and --batch give the same bytes whatever --threads and --n
    /// (a longer run extends a shorter one); another --batch changes values only by float rounding.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output: FILE.csv (header, one sample per row, class name first), FILE.npy (float32
    /// [rows, …shape], class indices in FILE.labels.npy), or `-` for CSV on stdout.
    #[arg(long, default_value = "-")]
    out: String,
    /// Rows per model call (the last call is padded to this size).
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// Threads, each running whole batches.
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

/// Below this many rows a progress bar is only noise.
const PROGRESS_MIN_ROWS: usize = 100_000;

pub fn run(a: GenerateArgs) -> Result<()> {
    if a.n == 0 {
        bail!("--n must be at least 1");
    }
    let g = Generator::load(&a.model)?;
    let classes = match a.class.as_str() {
        "all" => ClassChoice::All,
        name => ClassChoice::One(g.meta.class_index(name)?),
    };
    let req = Request {
        n: a.n,
        classes,
        seed: a.seed,
        batch: a.batch,
        threads: a.threads,
    };
    let total = req.total(&g);
    let mut writer = SampleWriter::new(&a.out, &g.meta, total)?;
    let bar = if total >= PROGRESS_MIN_ROWS && std::io::stderr().is_terminal() {
        ProgressBar::new(total as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} samples {per_sec} eta {eta}")
            .expect("valid template"),
    );
    generate(&g, &req, |chunk| {
        writer.write(&chunk)?;
        bar.inc(chunk.labels.len() as u64);
        Ok(())
    })?;
    bar.finish_and_clear();
    writer.finish()?;
    if a.out != "-" {
        let record = provenance(&a, &g, total)?;
        eprintln!(
            "wrote {total} samples to {} (seed {}; provenance {})",
            a.out, a.seed, record
        );
    }
    Ok(())
}

/// Writes `OUT.provenance.json` beside the samples: what made them (model, its training run, seed,
/// request, versions), so a data file can be traced and regenerated bit for bit.
fn provenance(a: &GenerateArgs, g: &Generator, total: usize) -> Result<String> {
    let model = std::fs::read(&a.model)?;
    let m = &g.meta;
    let record = serde_json::json!({
        "producer": format!("keel-run {}", env!("CARGO_PKG_VERSION")),
        "dependencies": env!("KEEL_DEP_VERSIONS"),
        "model": std::fs::canonicalize(&a.model)?.display().to_string(),
        "model_crc32": format!("{:08x}", keel_firmware::kq8::CRC32.checksum(&model)),
        "model_producer": m.producer,
        "dataset": m.dataset, "recipe": m.recipe, "train_seed": m.seed, "step": m.step,
        "seed": a.seed, "n": a.n, "class": a.class, "batch": a.batch, "samples": total,
        "command": format!(
            "keel-run generate {} --n {} --class {} --seed {} --batch {} --out {}",
            a.model.display(), a.n, a.class, a.seed, a.batch, a.out
        ),
    });
    let path = std::path::Path::new(&a.out).with_extension("provenance.json");
    let name = path.display().to_string();
    let mut d = Destination::open(&name)?;
    d.write_bytes(serde_json::to_string_pretty(&record)?.as_bytes())?;
    d.finish()?;
    Ok(name)
}
