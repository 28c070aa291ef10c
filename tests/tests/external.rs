//! Checks by programs nobody here wrote, and by another machine: the ONNX checker and onnxruntime on
//! the exported files, and the aarch64 build of keel-run under qemu-user. They need what `.ci/test`
//! installs (a Python venv with onnx + onnxruntime, the aarch64 build), hence `#[ignore]` here and
//! `--include-ignored` in the test command.

use keel_runtime::generate::latent;
use std::path::{Path, PathBuf};
use std::process::Command;

const TOLERANCE: f32 = 1e-5;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
        .join("generator.onnx")
}

/// The cargo target directory this test binary was built in (`…/target/release/deps/this`).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.ancestors().nth(3).expect("target dir").to_path_buf()
}

fn python() -> PathBuf {
    std::env::var_os("KEEL_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join(".venv/bin/python"))
}

fn write_f32(path: &Path, v: &[f32]) {
    std::fs::write(
        path,
        v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>(),
    )
    .unwrap();
}

fn read_f32(path: &Path) -> Vec<f32> {
    std::fs::read(path)
        .unwrap()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

#[test]
#[ignore = "needs Python with onnx and onnxruntime (KEEL_PYTHON or .venv): run .ci/test"]
fn onnx_checker_passes_and_onnxruntime_matches_tract() {
    let script = workspace().join("tests/python/ort_check.py");
    // Two MLP generators and the conditional conv generator (Conv, Resize, Gather, class input).
    for name in ["ring8", "grid25-bn", "basicmotions-conv"] {
        let model = keel_runtime::Generator::load(&fixture(name)).unwrap();
        let classes = model.meta.classes.len();
        for rows in [1usize, 64] {
            let dir = tempfile::tempdir().unwrap();
            let mut z = vec![0f32; rows * model.meta.latent];
            for (i, r) in z.chunks_exact_mut(model.meta.latent).enumerate() {
                latent(4, 0, i as u64, r);
            }
            write_f32(&dir.path().join("z.f32"), &z);
            let onehot = (classes > 0).then(|| {
                let mut v = vec![0f32; rows * classes];
                for r in 0..rows {
                    v[r * classes + r % classes] = 1.0;
                }
                write_f32(&dir.path().join("class.f32"), &v);
                v
            });
            let o = Command::new(python())
                .arg(&script)
                .arg(fixture(name))
                .arg(dir.path())
                .arg(rows.to_string())
                .output()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", python().display()));
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            let report = String::from_utf8_lossy(&o.stdout);
            assert!(report.contains("\"checker\": \"pass\""), "{report}");
            assert!(report.contains("keel.denorm"), "{report}");
            let ort = read_f32(&dir.path().join("x.ort.f32"));
            let plan = model.plan(rows).unwrap();
            let ours = model.run(&plan, rows, z, onehot).unwrap();
            let err = ours
                .iter()
                .zip(&ort)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            eprintln!("{name} batch {rows}: tract–onnxruntime max abs {err:.1e}; {report}");
            assert_eq!(ours.len(), ort.len());
            assert!(err <= TOLERANCE, "{name} batch {rows}: {err}");
        }
    }
}

#[test]
#[ignore = "needs the aarch64 build of keel-run and qemu-aarch64: run .ci/test"]
fn aarch64_build_under_qemu_gives_the_same_samples_as_x86() {
    let target = target_dir();
    let arm = target.join("aarch64-unknown-linux-gnu/release/keel-run");
    assert!(
        arm.exists(),
        "{} is missing: cargo build --release -p keel-runtime --target aarch64-unknown-linux-gnu",
        arm.display()
    );
    let x86 = target.join("release/keel-run");
    let args = |bin: &Path| -> Vec<String> {
        let mut v = vec![bin.display().to_string(), "generate".into()];
        v.push(fixture("grid25-bn").display().to_string());
        v.extend(["--n", "2000", "--seed", "3", "--threads", "2"].map(String::from));
        v
    };
    let here = Command::new(&x86).args(&args(&x86)[1..]).output().unwrap();
    assert!(
        here.status.success(),
        "{}",
        String::from_utf8_lossy(&here.stderr)
    );
    let there = Command::new("qemu-aarch64")
        .args(["-L", "/usr/aarch64-linux-gnu"])
        .args(args(&arm))
        .output()
        .expect("qemu-aarch64 (Debian qemu-user)");
    assert!(
        there.status.success(),
        "{}",
        String::from_utf8_lossy(&there.stderr)
    );
    let parse = |b: &[u8]| -> Vec<f32> {
        String::from_utf8_lossy(b)
            .lines()
            .skip(1)
            .flat_map(|l| {
                l.split(',')
                    .map(|x| x.parse::<f32>().unwrap())
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let (a, b) = (parse(&here.stdout), parse(&there.stdout));
    assert_eq!(a.len(), 4000);
    assert_eq!(a.len(), b.len());
    let err = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    let same = a
        .iter()
        .zip(&b)
        .filter(|(x, y)| x.to_bits() == y.to_bits())
        .count();
    eprintln!(
        "aarch64 vs x86: {same}/{} values bit-identical, max abs diff {err:.1e}",
        a.len()
    );
    // Same latents, same plan shapes, IEEE f32 on both: the CSV bytes are identical, not just close.
    assert!(
        here.stdout == there.stdout,
        "aarch64 and x86 differ (max abs {err})"
    );
}
