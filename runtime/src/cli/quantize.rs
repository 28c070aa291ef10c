use anyhow::{bail, Context, Result};
use clap::Args;
use keel_runtime::output::Destination;
use keel_runtime::quantize::{quantize_generator, Options, Report};
use keel_runtime::Generator;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct QuantizeArgs {
    /// The generator to quantize (ONNX from `keel export`).
    pub model: PathBuf,
    /// Calibration latents per class, drawn from the prior: they set every activation's int8 range.
    #[arg(long, default_value_t = 1000)]
    pub calib: usize,
    /// Held-out samples per class on which the quantization error is measured.
    #[arg(long, default_value_t = 2500)]
    pub eval: usize,
    /// Seed of the calibration latents (the held-out ones use seed + 1).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// How to round weights: `gptq` (error-compensating, against the calibration inputs) or
    /// `nearest` (plain per-weight rounding, for comparison).
    #[arg(long, value_enum, default_value_t = Rounding::Gptq)]
    pub rounding: Rounding,
    /// Where to write the int8 model (`.kq8`), atomically.
    #[arg(long)]
    pub out: PathBuf,
    /// Also write the error report as JSON here.
    #[arg(long)]
    pub report: Option<PathBuf>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rounding {
    Gptq,
    Nearest,
}

pub fn run(a: QuantizeArgs) -> Result<()> {
    if a.out.extension().and_then(|e| e.to_str()) != Some("kq8") {
        bail!("--out {}: name the file *.kq8", a.out.display());
    }
    let g = Generator::load(&a.model)?;
    let opt = Options {
        calib: a.calib,
        eval: a.eval,
        seed: a.seed,
        gptq: a.rounding == Rounding::Gptq,
    };
    let (bytes, report) =
        quantize_generator(&g, &opt).with_context(|| format!("{}", a.model.display()))?;
    let out = a.out.to_string_lossy().into_owned();
    let mut dest = Destination::open(&out)?;
    dest.write_bytes(&bytes)?;
    if let Some(path) = &a.report {
        let json = serde_json::to_string_pretty(&report)?;
        let mut r = Destination::open(&path.to_string_lossy())?;
        r.write_bytes(json.as_bytes())?;
        r.finish()?;
    }
    dest.finish()?;
    print_report(&report, &a.out);
    Ok(())
}

fn print_report(r: &Report, out: &std::path::Path) {
    println!(
        "wrote {} ({} bytes, {} MACs per sample as executed); calibrated on {} latents per class, measured on {} held-out",
        out.display(),
        r.bytes,
        r.macs,
        r.calib_per_class,
        r.eval_per_class
    );
    println!(
        "float graph as read vs tract: max |diff| {:.2e}",
        r.float_vs_tract
    );
    println!("{:<28} {:>8} {:>12}", "int8 layer", "MACs", "SQNR (dB)");
    for l in &r.layers {
        println!("{:<28} {:>8} {:>12.1}", l.layer, l.macs, l.sqnr_db);
    }
    println!("{:<28} {:>8} {:>12.1}", "end to end", "", r.sqnr_db);
    println!(
        "{:<28} {:>8} {:>12.1}",
        "  without the 1 % worst", "", r.sqnr_db_without_top_1pct
    );
    if let (Some(f), Some(q)) = (&r.modes_float, &r.modes_int8) {
        println!(
            "modes: float {}/{} at {:.1} % HQ; int8 {}/{} at {:.1} % HQ",
            f.modes, f.total, f.hq_pct, q.modes, q.total, q.hq_pct
        );
    }
}
