//! Build script shared by the trainer and the runtime: the versions of the dependencies that shape
//! their outputs, read from the workspace's Cargo.lock, so every output can record what made it.
//! Sets `KEEL_DEP_VERSIONS` to `burn 0.22.1, burn-onnx 0.22.1, tract-onnx 0.23.0` (those found).

const RECORDED: [&str; 3] = ["burn", "burn-onnx", "tract-onnx"];

fn main() {
    let lock =
        std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("../Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock.display());
    let text = std::fs::read_to_string(&lock).unwrap_or_default();
    let mut found = Vec::new();
    let mut name = None;
    for line in text.lines() {
        if let Some(n) = line.strip_prefix("name = ") {
            name = Some(n.trim_matches('"').to_string());
        } else if let (Some(v), Some(n)) = (line.strip_prefix("version = "), name.take()) {
            if RECORDED.contains(&n.as_str()) {
                found.push(format!("{n} {}", v.trim_matches('"')));
            }
        }
    }
    println!("cargo:rustc-env=KEEL_DEP_VERSIONS={}", found.join(", "));
}
