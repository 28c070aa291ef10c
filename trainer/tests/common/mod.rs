//! What the CLI tests share: running the `keel` binary and reading its errors.

use std::process::{Command, Output};

pub fn keel(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keel"))
        .args(args)
        .output()
        .expect("keel runs")
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
