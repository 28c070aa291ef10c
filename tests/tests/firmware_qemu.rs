//! The firmware on an emulated Cortex-M4 (QEMU mps2-an386): the samples it streams over its UART are
//! bit-identical to what the host computes with the same library, model and seed, and a corrupted
//! model makes it log the error and exit non-zero. Needs qemu-system-arm, defmt-print and the
//! thumbv7em-none-eabihf target (what `.ci/run` installs), hence `#[ignore]` and `--include-ignored`.

mod common;

use keel_firmware::{stream, Kernel, Model};
use keel_runtime::quantize::{quantize_generator, HostArena, Options};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// Board builds share one target directory: one at a time, each ELF copied out before the next.
static BUILD: Mutex<()> = Mutex::new(());

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn boards() -> PathBuf {
    workspace().join("firmware/boards")
}

/// Builds the an386 firmware around `kq8` and copies the ELF to `dir/firmware.elf`.
fn build(kq8: &Path, seed: u64, per_class: u32, dir: &Path) -> PathBuf {
    build_with(kq8, seed, per_class, None, dir)
}

/// [`build`], with an adaptation set embedded when `adapt` is given.
fn build_with(kq8: &Path, seed: u64, per_class: u32, adapt: Option<&Path>, dir: &Path) -> PathBuf {
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    // Beside this test binary's own target directory (`…/target/release/deps/this`), as .ci/test
    // builds the boards.
    let exe = std::env::current_exe().unwrap();
    let target = exe.ancestors().nth(3).unwrap().join("boards");
    let mut cmd = Command::new(env!("CARGO"));
    match adapt {
        Some(set) => cmd.env("KEEL_ADAPT", set),
        None => cmd.env_remove("KEEL_ADAPT"),
    };
    let out = cmd
        .current_dir(boards())
        .args(["build", "--release", "-p", "keel-mps2-an386"])
        .env("CARGO_TARGET_DIR", &target)
        .env("KEEL_KQ8", kq8)
        .env("KEEL_SEED", seed.to_string())
        .env("KEEL_PER_CLASS", per_class.to_string())
        .env("KEEL_BENCH_SAMPLES", "4")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "board build failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let elf = dir.join("firmware.elf");
    std::fs::copy(
        target.join("thumbv7em-none-eabihf/release/keel-mps2-an386"),
        &elf,
    )
    .unwrap();
    elf
}

/// Runs the ELF under QEMU through the board's cargo runner; returns (exit code, log, UART bytes).
fn run(elf: &Path, dir: &Path) -> (i32, String, Vec<u8>) {
    let serial = dir.join("samples.bin");
    let out = Command::new(boards().join("mps2-an386/qemu-run"))
        .arg(elf)
        .env("KEEL_SERIAL", &serial)
        .env("KEEL_TIMEOUT", "120")
        .output()
        .unwrap();
    let log =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (
        out.status.code().unwrap_or(-1),
        log,
        std::fs::read(&serial).unwrap_or_default(),
    )
}

/// Builds the firmware around `kq8`, runs it, and checks every streamed frame against the host.
fn stream_matches_host(kq8: &Path, seed: u64, per_class: u32) {
    let dir = tempfile::tempdir().unwrap();
    let elf = build(kq8, seed, per_class, dir.path());
    let (code, log, uart) = run(&elf, dir.path());
    assert_eq!(code, 0, "firmware failed:\n{log}");
    assert!(log.contains("DSP and scalar kernels agree"), "{log}");

    let bytes = std::fs::read(kq8).unwrap();
    let m = Model::parse(&bytes).unwrap();
    let mut buffers = HostArena::for_model(&m);
    let mut arena = buffers.arena();
    let mut at = 0;
    let mut frames = 0u32;
    while at < uart.len() {
        let (f, used) = stream::read_frame(&uart[at..], at as u32).unwrap();
        let host = m
            .generate(f.class, seed, f.index, &mut arena, Kernel::Scalar)
            .unwrap();
        let host: Vec<u8> = host.iter().map(|&v| v as u8).collect();
        assert_eq!(f.values, &host[..], "class {} index {}", f.class, f.index);
        let want = (frames / per_class, frames % per_class);
        assert_eq!((f.class as u32, f.index), want, "frames in order");
        frames += 1;
        at += used;
    }
    assert_eq!(
        frames,
        per_class * m.header.classes.max(1) as u32,
        "every sample arrived"
    );

    // What a user does with the capture: `keel-run decode` gives one CSV row per frame.
    let exe = std::env::current_exe().unwrap();
    let keel_run = exe.ancestors().nth(2).unwrap().join("keel-run");
    let capture = dir.path().join("samples.bin");
    let args = [
        "decode",
        capture.to_str().unwrap(),
        "--model",
        kq8.to_str().unwrap(),
    ];
    let out = Command::new(keel_run).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = String::from_utf8_lossy(&out.stdout).lines().count();
    assert_eq!(rows, frames as usize + 1, "header + one row per frame");
}

#[test]
#[ignore = "needs qemu-system-arm, defmt-print and the thumbv7em target: run .ci/test"]
fn streamed_samples_are_bit_identical_to_the_host() {
    stream_matches_host(
        &workspace().join("tests/fixtures/grid25/generator.kq8"),
        1234,
        200,
    );
}

/// `common::SHAPES[i]` exported and quantized into `dir/g.kq8`; its path and `.kq8` version.
fn quantized_shape(i: usize, dir: &Path) -> (PathBuf, u16) {
    let (_, _, onnx) = common::exported_shape(i, dir);
    let model = keel_runtime::Generator::load(&onnx).unwrap();
    let opt = Options {
        calib: 200,
        eval: 50,
        seed: 0,
        gptq: true,
    };
    let (bytes, _) = quantize_generator(&model, &opt).unwrap();
    let version = Model::parse(&bytes).unwrap().header.version;
    let kq8 = dir.join("g.kq8");
    std::fs::write(&kq8, bytes).unwrap();
    (kq8, version)
}

/// A conditional generator (3 classes, BatchNorm, latent 4): the per-class bias rows on the device.
#[test]
#[ignore = "needs qemu-system-arm, defmt-print and the thumbv7em target: run .ci/test"]
fn conditional_samples_are_bit_identical_to_the_host_for_every_class() {
    let dir = tempfile::tempdir().unwrap();
    let (kq8, _) = quantized_shape(3, dir.path());
    stream_matches_host(&kq8, 7, 40);
}

/// A conditional conv generator (3 classes, BatchNorm, LeakyReLU, upsampling blocks and a crop):
/// the convolution kernels, DSP and portable, on the device.
#[test]
#[ignore = "needs qemu-system-arm, defmt-print and the thumbv7em target: run .ci/test"]
fn conv_generator_samples_are_bit_identical_to_the_host_for_every_class() {
    let dir = tempfile::tempdir().unwrap();
    let (kq8, version) = quantized_shape(common::CONV_SHAPE, dir.path());
    assert_eq!(version, keel_firmware::kq8::VERSION);
    stream_matches_host(&kq8, 5, 30);
}

/// The BasicMotions series generator (4 classes, 6 × 100 values a sample) as `keel train` made it.
#[test]
#[ignore = "needs qemu-system-arm, defmt-print and the thumbv7em target: run .ci/test"]
fn series_samples_are_bit_identical_to_the_host_for_every_class() {
    stream_matches_host(
        &workspace().join("tests/fixtures/basicmotions/generator.kq8"),
        3,
        5,
    );
}

#[test]
#[ignore = "needs qemu-system-arm, defmt-print and the thumbv7em target: run .ci/test"]
fn a_corrupted_model_is_refused_on_the_device() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(workspace().join("tests/fixtures/ring8/generator.kq8")).unwrap();
    let at = bytes.len() / 2; // inside the weights
    bytes[at] ^= 0x01;
    let bad = dir.path().join("bad.kq8");
    std::fs::write(&bad, &bytes).unwrap();
    let elf = build(&bad, 0, 4, dir.path());
    let (code, log, uart) = run(&elf, dir.path());
    assert_eq!(code, 2, "expected exit 2 (model refused):\n{log}");
    assert!(
        log.contains("model refused") && log.contains("BadChecksum"),
        "{log}"
    );
    assert!(
        uart.is_empty(),
        "nothing may be streamed from a refused model"
    );
}

/// `keel-run` beside this test binary.
fn keel_run() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.ancestors().nth(2).unwrap().join("keel-run")
}

#[test]
#[ignore = "needs qemu-system-arm, defmt-print and the thumbv7em target: run .ci/test"]
fn the_device_adapts_exactly_as_the_host_simulates() {
    let dir = tempfile::tempdir().unwrap();
    let kq8 = workspace().join("tests/fixtures/basicmotions/generator.kq8");
    let (set, json) = (dir.path().join("set.kad"), dir.path().join("host.json"));
    // The host simulation of one draw (k = 2 BasicMotions windows per class from the test split,
    // 20 generated per class), and that draw as the board's adaptation set.
    let out = Command::new(keel_run())
        .args(["adapt", kq8.to_str().unwrap(), "--data", "basicmotions"])
        .args([
            "--k",
            "2",
            "--draws",
            "1",
            "--generated",
            "20",
            "--seed",
            "3",
        ])
        .args(["--export-set", set.to_str().unwrap()])
        .args(["--json", json.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let host: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let row = &host["rows"][0];
    let tested = row["tested"].as_f64().unwrap();
    let right = |arm: usize| (row["per_draw"][arm][0].as_f64().unwrap() * tested).round() as u64;

    let elf = build_with(&kq8, 0, 1, Some(&set), dir.path());
    let (code, log, _) = run(&elf, dir.path());
    assert_eq!(code, 0, "firmware failed:\n{log}");
    let device = |prefix: &str| -> u64 {
        let line = log
            .lines()
            .find(|l| l.contains(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` in the log:\n{log}"));
        let after = &line[line.find(prefix).unwrap() + prefix.len()..];
        after.split_whitespace().next().unwrap().parse().unwrap()
    };
    assert_eq!(device("adapt: real only "), right(0), "{log}");
    assert_eq!(device("generated per class "), right(1), "{log}");
    assert!(log.contains(&format!("of {tested} right")), "{log}");

    // A corrupted set is refused on the device, with its error and exit code 5.
    let mut bytes = std::fs::read(&set).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x10;
    let bad = dir.path().join("bad.kad");
    std::fs::write(&bad, bytes).unwrap();
    let elf = build_with(&kq8, 0, 1, Some(&bad), dir.path());
    let (code, log, _) = run(&elf, dir.path());
    assert_eq!(code, 5, "{log}");
    assert!(log.contains("adapt: set refused: BadChecksum"), "{log}");
}
