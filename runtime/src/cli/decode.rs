use anyhow::{anyhow, bail, Result};
use clap::Args;
use keel_firmware::{stream, Model};
use keel_runtime::adapt::provenance_names;
use keel_runtime::output::Destination;
use std::fmt::Write as _;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct DecodeArgs {
    /// Bytes captured from a board's sample stream (its UART; `samples.bin` under QEMU).
    pub capture: PathBuf,
    /// The `.kq8` the board runs: its header turns int8 values into real units.
    #[arg(long)]
    pub model: PathBuf,
    /// CSV file to write (atomically), or `-` for stdout.
    #[arg(long, default_value = "-")]
    pub out: String,
}

/// Frames → CSV rows `class,index,<columns>` in real units. Bytes before the first frame (a capture
/// started mid-stream) and damaged frames are skipped and counted, not guessed at.
pub fn run(a: DecodeArgs) -> Result<()> {
    let bytes = keel_runtime::quantize::read_kq8(&a.model)?;
    let m = Model::parse(&bytes).map_err(|e| anyhow!("{}: {e}", a.model.display()))?;
    let capture = std::fs::read(&a.capture)
        .map_err(|e| anyhow!("cannot read capture {}: {e}", a.capture.display()))?;
    let (classes, mut columns) = (
        provenance_names(&m, "classes"),
        provenance_names(&m, "columns"),
    );
    let (outputs, length) = (m.header.outputs(), m.header.length.max(1) as usize);
    if columns.len() != outputs {
        columns = (0..outputs).map(|i| format!("v{i}")).collect();
    }
    let mut out = Destination::open(&a.out)?;
    out.write_bytes(format!("class,index,{}\n", columns.join(",")).as_bytes())?;
    let (mut at, mut rows, mut skipped) = (0usize, 0usize, 0usize);
    let mut line = String::new();
    while at < capture.len() {
        match stream::read_frame(&capture[at..], at as u32) {
            Ok((f, used)) if f.values.len() == outputs && f.class < m.header.classes.max(1) => {
                line.clear();
                let class = classes
                    .get(f.class as usize)
                    .cloned()
                    .unwrap_or_else(|| f.class.to_string());
                write!(line, "{class},{}", f.index)?;
                for (i, &q) in f.values.iter().enumerate() {
                    write!(line, ",{}", m.to_real(i / length, q as i8))?;
                }
                line.push('\n');
                out.write_bytes(line.as_bytes())?;
                rows += 1;
                at += used;
            }
            _ => {
                skipped += 1;
                at += 1;
            }
        }
    }
    if rows == 0 {
        bail!(
            "{}: no sample frames for this model in {} bytes (is it the capture of a board running {}?)",
            a.capture.display(),
            capture.len(),
            a.model.display()
        );
    }
    out.finish()?;
    eprintln!("decoded {rows} samples; skipped {skipped} bytes that were not a valid frame");
    Ok(())
}
