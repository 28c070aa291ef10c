use anyhow::{bail, Context, Result};
use keel_runtime::bench::{time, Timing};
use keel_runtime::Generator;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// The generator (ONNX file written by `keel export`).
    model: PathBuf,
    /// Seconds of timing per configuration.
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// Also time onnxruntime on the same file with this peer script (runtime/bench/ort_bench.py)
    /// and print the ratios.
    #[arg(long)]
    peer: Option<PathBuf>,
    /// Python with numpy, onnx and onnxruntime, for --peer.
    #[arg(long, default_value = ".venv/bin/python")]
    python: PathBuf,
}

/// (batch, threads) in the order reported.
const CONFIGS: [(usize, usize); 4] = [(1, 1), (256, 1), (1, 2), (256, 2)];

pub fn run(a: BenchArgs) -> Result<()> {
    if !(a.seconds > 0.0 && a.seconds <= 600.0) {
        bail!("--seconds must be in (0, 600], got {}", a.seconds);
    }
    let g = Generator::load(&a.model)?;
    let budget = Duration::from_secs_f64(a.seconds);
    let mut ours = Vec::new();
    for (batch, threads) in CONFIGS {
        ours.push(time(&g, batch, threads, budget)?);
    }
    let peer = match &a.peer {
        Some(script) => Some(run_peer(&a.python, script, &a.model)?),
        None => None,
    };
    println!(
        "{} · {} MACs/sample · tract (keel-run) {}",
        a.model.display(),
        g.macs_per_sample()?,
        env!("CARGO_PKG_VERSION")
    );
    println!("| batch | threads | keel-run µs/call | keel-run samples/s | onnxruntime µs/call | onnxruntime samples/s | ratio |");
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for t in &ours {
        let p = peer.as_ref().and_then(|p| {
            p.iter()
                .find(|q| q.batch == t.batch && q.threads == t.threads)
        });
        let (pu, ps, ratio) = match p {
            // Batch 1 compares latency (peer / ours, > 1 = faster), batch 256 throughput (ours / peer).
            Some(p) if t.batch == 1 => (
                format!("{:.2}", p.median_us),
                format!("{:.0}", p.samples_per_s),
                format!("{:.2}× faster", p.median_us / t.median_us),
            ),
            Some(p) => (
                format!("{:.2}", p.median_us),
                format!("{:.0}", p.samples_per_s),
                format!("{:.2}× throughput", t.samples_per_s / p.samples_per_s),
            ),
            None => ("".into(), "".into(), "".into()),
        };
        println!(
            "| {} | {} | {:.2} | {:.0} | {pu} | {ps} | {ratio} |",
            t.batch, t.threads, t.median_us, t.samples_per_s
        );
    }
    let one = ours
        .iter()
        .find(|t| t.batch == 256 && t.threads == 1)
        .expect("config");
    let two = ours
        .iter()
        .find(|t| t.batch == 256 && t.threads == 2)
        .expect("config");
    println!(
        "keel-run batch 256: two threads give {:.2}× the one-thread throughput",
        two.samples_per_s / one.samples_per_s
    );
    Ok(())
}

/// Runs the onnxruntime peer once per thread count and reads its JSON lines.
fn run_peer(python: &PathBuf, script: &PathBuf, model: &PathBuf) -> Result<Vec<Timing>> {
    let mut out = Vec::new();
    for threads in [1, 2] {
        let o = Command::new(python)
            .arg(script)
            .arg(model)
            .args(["--batches", "1,256", "--threads", &threads.to_string()])
            .output()
            .with_context(|| format!("cannot run {} {}", python.display(), script.display()))?;
        if !o.status.success() {
            bail!(
                "the onnxruntime peer failed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        for line in String::from_utf8_lossy(&o.stdout).lines() {
            let v: serde_json::Value = serde_json::from_str(line)
                .with_context(|| format!("peer printed a line that is not JSON: {line}"))?;
            if let (Some(b), Some(us)) = (v["batch"].as_u64(), v["median_us"].as_f64()) {
                out.push(Timing {
                    batch: b as usize,
                    threads,
                    median_us: us,
                    p90_us: v["p90_us"].as_f64().unwrap_or(f64::NAN),
                    samples_per_s: b as f64 * 1e6 / us,
                });
            }
        }
    }
    Ok(out)
}
