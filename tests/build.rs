//! Regenerates Rust models from the committed ONNX fixtures (which `keel export` wrote), so the
//! round-trip tests can run the imported model beside the trainer's own and tract.

use burn_onnx::ModelGen;

/// Fixture run directories, each with a `generator.onnx`.
const FIXTURES: [&str; 3] = ["ring8", "grid25-bn", "basicmotions-conv"];

fn main() {
    for name in FIXTURES {
        let input = format!("fixtures/{name}/generator.onnx");
        println!("cargo:rerun-if-changed={input}");
        ModelGen::new()
            .input(&input)
            .out_dir(&format!("imported/{name}/"))
            .run_from_script();
    }
}
