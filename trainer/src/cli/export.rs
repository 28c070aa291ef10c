use anyhow::Result;
use keel_trainer::export::export_run;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// A run directory written by `keel train`.
    run: PathBuf,
    /// Where to write the ONNX file [default: RUN/generator.onnx].
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(a: ExportArgs) -> Result<()> {
    let out = export_run(&a.run, a.out.as_deref())?;
    println!("wrote {}", out.display());
    println!("  inspect it: keel-run info {}", out.display());
    Ok(())
}
