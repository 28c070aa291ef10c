//! Embeds the model: `KEEL_KQ8` (default: the ring8 test fixture) is copied into the binary's flash
//! and the activation arena is sized from its header; `KEEL_ADAPT`, an adaptation set, likewise. A model the reader refuses still builds —
//! with a warning and a minimal arena — so the device itself reports the error (and a test checks
//! that it does).

use std::path::PathBuf;
use std::{env, fs};

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let default = manifest.join("../../../tests/fixtures/ring8/generator.kq8");
    let path = env::var_os("KEEL_KQ8").map_or(default, PathBuf::from);
    println!("cargo:rerun-if-env-changed=KEEL_KQ8");
    println!("cargo:rerun-if-changed={}", path.display());
    let bytes = fs::read(&path).unwrap_or_else(|e| panic!("KEEL_KQ8={}: {e}", path.display()));
    let (width, words) = match keel_firmware::Model::parse(&bytes) {
        Ok(m) => (m.max_width, m.max_in / 2),
        Err(e) => {
            println!(
                "cargo:warning={}: {e} (the firmware will refuse it)",
                path.display()
            );
            (4, 2)
        }
    };
    let num = |key: &str, default: u64| -> u64 {
        println!("cargo:rerun-if-env-changed={key}");
        env::var(key).ok().map_or(default, |v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{key}={v}: not a number"))
        })
    };
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    fs::write(out.join("model.kq8"), &bytes).unwrap();
    let code = format!(
        "/// The model, in flash, word-aligned for the kernels' loads.\n\
         pub static MODEL: Aligned<[u8; {len}]> = Aligned(*include_bytes!(concat!(env!(\"OUT_DIR\"), \"/model.kq8\")));\n\
         /// i8 values in each of the arena's two activation buffers.\n\
         pub const ARENA_WIDTH: usize = {width};\n\
         /// u32 words of the unpacked dense input.\n\
         pub const ARENA_WORDS: usize = {words};\n\
         pub const SEED: u64 = {seed};\n\
         pub const PER_CLASS: u32 = {per_class};\n\
         pub const INTERVAL_US: u32 = {interval};\n\
         pub const BENCH_SAMPLES: u32 = {bench};\n",
        len = bytes.len(),
        seed = num("KEEL_SEED", 0),
        per_class = num("KEEL_PER_CLASS", 16),
        interval = num("KEEL_INTERVAL_US", 0),
        bench = num("KEEL_BENCH_SAMPLES", 16),
    );
    // An adaptation set (`keel-run adapt --export-set`), when given: the board then adapts on it.
    println!("cargo:rerun-if-env-changed=KEEL_ADAPT");
    let adapt = match env::var_os("KEEL_ADAPT") {
        Some(p) => {
            println!("cargo:rerun-if-changed={}", PathBuf::from(&p).display());
            fs::read(&p).unwrap_or_else(|e| panic!("KEEL_ADAPT={}: {e}", p.to_string_lossy()))
        }
        None => Vec::new(),
    };
    fs::write(out.join("adapt.kad"), &adapt).unwrap();
    let code = code
        + &format!(
            "/// The adaptation set (empty: none).\n\
             pub static ADAPT: Aligned<[u8; {}]> = Aligned(*include_bytes!(concat!(env!(\"OUT_DIR\"), \"/adapt.kad\")));\n",
            adapt.len()
        );
    fs::write(out.join("model.rs"), code).unwrap();
}
