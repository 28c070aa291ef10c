//! What the CLI tests share: running the `keel` binary and reading its errors.

use std::process::{Command, Output};

pub fn keel(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keel"))
        .args(args)
        .output()
        .expect("keel runs")
}

/// `keel ARGS` to the end, from owned arguments.
pub fn keel_with(args: &[String]) -> Output {
    keel(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// `keel train` of ring8 until converged (`--steps auto`), evaluated every 100 steps on 500 samples
/// with a short patience so a test run stops in seconds; `extra` arguments go before `--out`.
pub fn auto_ring8_args(extra: &[&str], out: &std::path::Path) -> Vec<String> {
    [
        "train",
        "--data",
        "ring8",
        "--steps",
        "auto",
        "--set",
        "train.max_steps=8000",
        "--set",
        "train.eval_every=100",
        "--set",
        "train.eval_samples=500",
        "--set",
        "train.patience=0.3",
        "--quiet",
        "--no-quantize",
    ]
    .iter()
    .chain(extra)
    .map(|s| s.to_string())
    .chain(["--out".to_string(), out.display().to_string()])
    .collect()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `keel export RUN --out OUT` (it must succeed); the bytes it wrote.
pub fn export_to(run: &std::path::Path, out: &std::path::Path) -> Vec<u8> {
    let o = keel(&[
        "export",
        run.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::read(out).unwrap()
}

/// `keel train --data DATA --out OUT -q` on a file that must be refused: the error names `needle`,
/// nothing panics and no run directory is written.
pub fn refused_data(data: &std::path::Path, out: &std::path::Path, needle: &str) {
    let name = data.display();
    let o = keel(&[
        "train",
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "-q",
        "--no-quantize",
    ]);
    assert!(!o.status.success(), "{name}: expected failure");
    let e = stderr(&o);
    assert!(e.contains(needle), "{name}: stderr lacks `{needle}`:\n{e}");
    assert!(!e.contains("panicked"), "{name} panicked:\n{e}");
    assert!(!out.exists(), "{name}: a run directory was written");
}
