//! `keel-run` as a user runs it: on the committed ring8 generator, and on every kind of bad input.

use prost::Message;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tract_onnx::pb;

const BIN: &str = env!("CARGO_BIN_EXE_keel-run");

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/ring8/generator.onnx")
}

fn keel_run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("run keel-run")
}

/// `keel-run generate MODEL --n N --out OUT EXTRA…`.
fn generate(model: &Path, n: &str, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["generate", model.to_str().unwrap(), "--n", n];
    args.extend_from_slice(&["--out", out.to_str().unwrap()]);
    args.extend_from_slice(extra);
    keel_run(&args)
}

/// CSV samples of `keel-run generate MODEL --n N --seed S` on stdout.
fn generated(model: &Path, n: &str, seed: &str) -> Vec<u8> {
    generate(model, n, Path::new("-"), &["--seed", seed]).stdout
}

/// The numbers of a CSV with a header row.
fn csv_values(bytes: &[u8]) -> Vec<f32> {
    let text = String::from_utf8_lossy(bytes);
    let rows = text.lines().skip(1);
    rows.flat_map(|l| {
        l.split(',')
            .map(|x| x.parse::<f32>().unwrap())
            .collect::<Vec<_>>()
    })
    .collect()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A clear error: non-zero exit, the message contains `needle`, and no panic.
fn assert_error(o: &Output, needle: &str) {
    let e = stderr(o);
    assert!(
        !o.status.success(),
        "expected failure, got success; stderr: {e}"
    );
    assert!(!e.contains("panicked"), "panicked: {e}");
    assert!(e.contains(needle), "error should mention `{needle}`: {e}");
}

/// The directory holds exactly `names` (no output and no temporary left behind by a failure).
fn assert_files(dir: &Path, names: &[&str]) {
    let mut got: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    got.sort();
    let mut want: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(got, want, "files in {}", dir.display());
}

fn write_model(dir: &Path, name: &str, edit: impl FnOnce(&mut pb::ModelProto)) -> PathBuf {
    let bytes = std::fs::read(fixture()).unwrap();
    let mut m = pb::ModelProto::decode(&bytes[..]).unwrap();
    edit(&mut m);
    let p = dir.join(name);
    std::fs::write(&p, m.encode_to_vec()).unwrap();
    p
}

#[test]
fn info_shows_ports_metadata_and_cost() {
    let o = keel_run(&["info", fixture().to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("input       z [batch, 2] float32"), "{out}");
    assert!(out.contains("output      x [batch, 2] float32"), "{out}");
    assert!(out.contains("keel.dataset = ring8"), "{out}");
    // 2→128→128→128→2 MLP: 33,024 multiply-accumulates in its four matrix products, plus the biases.
    let macs: u64 = out
        .lines()
        .find_map(|l| l.strip_prefix("MACs/sample "))
        .expect("MACs line")
        .trim()
        .parse()
        .unwrap();
    assert!((33_024..=34_000).contains(&macs), "{macs}");
    let j = keel_run(&["info", "--json", fixture().to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_slice(&j.stdout).unwrap();
    assert_eq!(v["inputs"][0]["name"], "z");
    assert_eq!(v["metadata"]["keel.latent"], "2");
}

#[test]
fn same_seed_same_bytes_whatever_the_threads_and_n() {
    let dir = tempfile::tempdir().unwrap();
    let m = fixture();
    let run = |name: &str, extra: &[&str]| -> Vec<u8> {
        let out = dir.path().join(name);
        let mut args = vec!["--seed", "7"];
        args.extend_from_slice(extra);
        let o = generate(&m, "1000", &out, &args);
        assert!(o.status.success(), "{}", stderr(&o));
        std::fs::read(out).unwrap()
    };
    let a = run("a.csv", &[]);
    let b = run("b.csv", &["--threads", "2"]);
    let c = run("c.csv", &["--threads", "3"]);
    assert!(a == b && a == c, "threads changed the output");
    let text = String::from_utf8(a.clone()).unwrap();
    // Another batch size: other kernels, same samples to float rounding.
    let other = String::from_utf8(run("d.csv", &["--batch", "37", "--threads", "2"])).unwrap();
    for (x, y) in text.lines().zip(other.lines()).skip(1) {
        for (u, v) in x.split(',').zip(y.split(',')) {
            let (u, v): (f64, f64) = (u.parse().unwrap(), v.parse().unwrap());
            assert!((u - v).abs() <= 1e-5, "{x} vs {y}");
        }
    }
    assert_eq!(text.lines().next(), Some("x,y"));
    assert_eq!(text.lines().count(), 1001);
    // Samples lie on the ring of radius 1 (real units), not in normalised space.
    let radii: Vec<f64> = text
        .lines()
        .skip(1)
        .map(|l| {
            let v: Vec<f64> = l.split(',').map(|x| x.parse().unwrap()).collect();
            (v[0] * v[0] + v[1] * v[1]).sqrt()
        })
        .collect();
    let mean = radii.iter().sum::<f64>() / radii.len() as f64;
    assert!((0.9..1.1).contains(&mean), "mean radius {mean}");
    // Another seed, other samples.
    assert!(
        generated(&m, "1000", "8") != a,
        "seed 8 gave seed 7's samples"
    );
    // Stdout gives the same bytes as the file.
    assert!(
        generated(&m, "1000", "7") == a,
        "stdout differs from the file"
    );
    // A shorter run is a prefix of a longer one.
    let short = generated(&m, "300", "7");
    assert!(a.starts_with(&short), "--n 300 is not a prefix of --n 1000");
}

#[test]
fn npy_output_has_a_valid_header_and_the_csv_values() {
    let dir = tempfile::tempdir().unwrap();
    let npy = dir.path().join("s.npy");
    let m = fixture();
    let o = generate(&m, "10", &npy, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let bytes = std::fs::read(&npy).unwrap();
    assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
    let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    assert_eq!((10 + hlen) % 64, 0, "data is 64-byte aligned");
    let header = std::str::from_utf8(&bytes[10..10 + hlen]).unwrap();
    assert!(
        header.contains("'descr': '<f4'") && header.contains("'shape': (10, 2)"),
        "{header}"
    );
    let values: Vec<f32> = bytes[10 + hlen..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let from_csv = csv_values(&generated(&m, "10", "0"));
    assert_eq!(values, from_csv);
    // Beside the samples, what made them: model, seed, request and versions.
    assert_files(dir.path(), &["s.npy", "s.provenance.json"]);
    let p: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("s.provenance.json")).unwrap())
            .unwrap();
    assert_eq!(p["seed"], 0);
    assert_eq!(p["n"], 10);
    assert!(p["dependencies"]
        .as_str()
        .unwrap()
        .contains("tract-onnx 0.23"));
    assert!(p["model_producer"]
        .as_str()
        .unwrap()
        .starts_with("keel-trainer"));
    assert_eq!(p["model_crc32"].as_str().unwrap().len(), 8);
}

#[test]
fn missing_file() {
    let o = keel_run(&["info", "/nonexistent/generator.onnx"]);
    assert_error(&o, "cannot read model file /nonexistent/generator.onnx");
}

#[test]
fn a_file_that_is_not_onnx() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("notes.onnx");
    std::fs::write(&p, "this is a text file, not a model\n").unwrap();
    assert_error(
        &keel_run(&["info", p.to_str().unwrap()]),
        "not an ONNX model",
    );
    let empty = dir.path().join("empty.onnx");
    std::fs::write(&empty, b"").unwrap();
    assert_error(
        &keel_run(&["info", empty.to_str().unwrap()]),
        "the file is empty",
    );
}

#[test]
fn a_truncated_file() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(fixture()).unwrap();
    for cut in [bytes.len() / 2, bytes.len() - 1, 100] {
        let p = dir.path().join("cut.onnx");
        std::fs::write(&p, &bytes[..cut]).unwrap();
        let out = dir.path().join("out.csv");
        let o = generate(&p, "5", &out, &[]);
        assert_error(&o, p.to_str().unwrap());
        assert_files(dir.path(), &["cut.onnx"]);
    }
}

fn set_prop(m: &mut pb::ModelProto, key: &str, value: &str) {
    for p in m.metadata_props.iter_mut().filter(|p| p.key == key) {
        p.value = value.into();
    }
}

#[test]
fn onnx_that_is_not_a_keel_generator() {
    type Edit = Box<dyn FnOnce(&mut pb::ModelProto)>;
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "plain",
            Box::new(|m| m.metadata_props.clear()),
            "not a Keel generator",
        ),
        (
            "renamed",
            Box::new(|m| {
                let g = m.graph.as_mut().unwrap();
                g.input[0].name = "input".into();
                for n in g.node.iter_mut() {
                    let uses = n.input.iter_mut().filter(|i| *i == "z");
                    uses.for_each(|i| *i = "input".into());
                }
            }),
            "inputs are [\"input\"]",
        ),
        (
            "future",
            Box::new(|m| set_prop(m, "keel.format_version", "99")),
            "keel.format_version",
        ),
        (
            "lying",
            Box::new(|m| set_prop(m, "keel.latent", "16")),
            "input `z` has shape",
        ),
        (
            "missing",
            Box::new(|m| m.metadata_props.retain(|p| p.key != "keel.denorm")),
            "`keel.denorm` is missing",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (name, edit, needle) in cases {
        let path = write_model(dir.path(), &format!("{name}.onnx"), edit);
        assert_error(&keel_run(&["info", path.to_str().unwrap()]), needle);
    }
}

#[test]
fn unknown_class_zero_samples_and_bad_flags() {
    let dir = tempfile::tempdir().unwrap();
    let m = fixture();
    let out = dir.path().join("o.csv");
    let o = out.to_str().unwrap();
    let ms = m.to_str().unwrap();
    assert_error(
        &keel_run(&["generate", ms, "--n", "5", "--class", "walking", "--out", o]),
        "--class walking",
    );
    assert_error(
        &keel_run(&["generate", ms, "--n", "0", "--out", o]),
        "--n must be at least 1",
    );
    assert_error(
        &keel_run(&["generate", ms, "--n", "5", "--batch", "0", "--out", o]),
        "--batch",
    );
    assert_error(
        &keel_run(&["generate", ms, "--n", "5", "--threads", "0", "--out", o]),
        "--threads",
    );
    assert_files(dir.path(), &[]);
}

#[test]
fn unwritable_output() {
    let dir = tempfile::tempdir().unwrap();
    let ms = fixture();
    let ms = ms.to_str().unwrap();
    let o = keel_run(&[
        "generate",
        ms,
        "--n",
        "5",
        "--out",
        "/nonexistent-dir/samples.csv",
    ]);
    assert_error(
        &o,
        "--out /nonexistent-dir/samples.csv: cannot write in /nonexistent-dir",
    );
    let d = dir.path().to_str().unwrap();
    assert_error(
        &keel_run(&["generate", ms, "--n", "5", "--out", d]),
        "is a directory",
    );
    // An existing file is replaced whole, never half-written.
    let out = dir.path().join("keep.csv");
    std::fs::write(&out, "old\n").unwrap();
    let o = keel_run(&["generate", ms, "--n", "0", "--out", out.to_str().unwrap()]);
    assert!(!o.status.success());
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "old\n");
    assert_files(dir.path(), &["keep.csv"]);
}

#[test]
fn no_burn_in_the_runtime_dependency_tree() {
    let o = Command::new(env!("CARGO"))
        .args([
            "tree",
            "-p",
            "keel-runtime",
            "-e",
            "normal,build",
            "--prefix",
            "none",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree");
    assert!(o.status.success(), "{}", stderr(&o));
    let tree = String::from_utf8_lossy(&o.stdout);
    assert!(tree.lines().any(|l| l.starts_with("tract-onnx ")), "{tree}");
    let burn: Vec<&str> = tree.lines().filter(|l| l.starts_with("burn")).collect();
    assert!(burn.is_empty(), "burn in keel-runtime's tree: {burn:?}");
}

#[test]
fn quantize_writes_a_kq8_that_info_reads_and_reports_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("g.kq8");
    let report = dir.path().join("report.json");
    let o = keel_run(&[
        "quantize",
        fixture().to_str().unwrap(),
        "--calib",
        "200",
        "--eval",
        "200",
        "--out",
        out.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("end to end") && text.contains("SQNR"),
        "{text}"
    );
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert!(r["sqnr_db"].as_f64().unwrap() > 20.0, "{r}");
    assert_eq!(r["layers"].as_array().unwrap().len(), 4);
    let info = keel_run(&["info", out.to_str().unwrap(), "--json"]);
    assert!(info.status.success(), "{}", stderr(&info));
    let v: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(v["latent"], 2);
    assert_eq!(v["macs_per_sample"], 4 * 128 + 128 * 128 * 2 + 128 * 4);
    assert_eq!(v["provenance"]["calibration"]["per_class"], 200);

    // One flipped byte in the weights: refused with the file named, nothing else touched.
    let mut bytes = std::fs::read(&out).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x40;
    let bad = dir.path().join("bad.kq8");
    std::fs::write(&bad, &bytes).unwrap();
    let o = keel_run(&["info", bad.to_str().unwrap()]);
    assert_error(&o, "checksum mismatch");
    assert_error(&o, "bad.kq8");
}

#[test]
fn quantize_refuses_what_it_cannot_quantize_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // An op the int8 program has no kernel for, named in the error.
    let model = write_model(dir.path(), "sin.onnx", |m| {
        let g = m.graph.as_mut().unwrap();
        let relu = g.node.iter_mut().find(|n| n.op_type == "Relu").unwrap();
        relu.op_type = "Sin".into();
    });
    let out = dir.path().join("x.kq8");
    let o = keel_run(&[
        "quantize",
        model.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_error(&o, "`Sin`");
    // Not a .kq8 name; zero calibration.
    let o = keel_run(&[
        "quantize",
        fixture().to_str().unwrap(),
        "--out",
        dir.path().join("x.bin").to_str().unwrap(),
    ]);
    assert_error(&o, "*.kq8");
    let o = keel_run(&[
        "quantize",
        fixture().to_str().unwrap(),
        "--calib",
        "0",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_error(&o, "--calib");
    assert_files(dir.path(), &["sin.onnx"]);
}

#[test]
fn decode_turns_a_captured_stream_into_csv_skipping_noise_and_damaged_frames() {
    use keel_firmware::{stream, Kernel, Model};
    let kq8 = fixture().with_file_name("generator.kq8");
    let bytes = std::fs::read(&kq8).unwrap();
    let m = Model::parse(&bytes).unwrap();
    let mut buffers = keel_runtime::quantize::HostArena::for_model(&m);
    let mut arena = buffers.arena();
    // A capture that starts mid-frame, then five frames, the third one damaged on the wire.
    let mut capture = vec![0x12, 0x4B, 0x00];
    let mut want = Vec::new();
    for i in 0..5u32 {
        let s = m
            .generate(0, 3, i, &mut arena, Kernel::Scalar)
            .unwrap()
            .to_vec();
        let start = capture.len();
        stream::write_frame(&mut capture, 0, i, &s).unwrap();
        if i == 2 {
            capture[start + 11] ^= 0x08;
        } else {
            want.push(format!(
                "0,{i},{},{}",
                m.to_real(0, s[0]),
                m.to_real(1, s[1])
            ));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let cap = dir.path().join("samples.bin");
    std::fs::write(&cap, &capture).unwrap();
    let out = dir.path().join("samples.csv");
    let args = [
        "decode",
        cap.to_str().unwrap(),
        "--model",
        kq8.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    let o = keel_run(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("decoded 4 samples"), "{}", stderr(&o));
    let csv = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "class,index,x,y");
    assert_eq!(
        &lines[1..],
        want.iter().map(String::as_str).collect::<Vec<_>>()
    );

    // Nothing that decodes: an error naming the capture, and no file.
    std::fs::write(&cap, b"no frames here").unwrap();
    std::fs::remove_file(&out).unwrap();
    assert_error(&keel_run(&args), "no sample frames");
    assert_files(dir.path(), &["samples.bin"]);
}

/// A reader that goes away (`keel-run info … | head`) ends keel-run quietly with status 141, as
/// Unix tools end on SIGPIPE: no panic, no backtrace.
#[test]
fn a_closed_pipe_ends_quietly() {
    let mut child = Command::new(BIN)
        .args(["info", fixture().to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run keel-run");
    // Close the reading end before keel-run has loaded the model and printed anything.
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(o.status.code(), Some(141), "{err}");
}

#[test]
fn adapt_simulates_the_device_learner_and_refuses_what_does_not_fit() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
    let bm = fixtures.join("basicmotions/generator.kq8");
    let tmp = tempfile::tempdir().unwrap();
    let run = |name: &str| -> serde_json::Value {
        let json = tmp.path().join(name);
        let o = keel_run(&[
            "adapt",
            bm.to_str().unwrap(),
            "--data",
            "basicmotions",
            "--k",
            "2,3",
            "--draws",
            "3",
            "--generated",
            "5",
            "--json",
            json.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(String::from_utf8_lossy(&o.stdout).contains("+ generated"));
        serde_json::from_slice(&std::fs::read(json).unwrap()).unwrap()
    };
    let first = run("a.json");
    let rows = first["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for (row, k) in rows.iter().zip([2, 3]) {
        assert_eq!(row["k"], k);
        // BasicMotions' test split has 10 windows per class: the rest are classified.
        assert_eq!(row["tested"], 4 * (10 - k));
        for arm in row["per_draw"].as_array().unwrap() {
            let v = arm.as_array().unwrap();
            assert_eq!(v.len(), 3);
            assert!(v.iter().all(|a| (0.0..=1.0).contains(&a.as_f64().unwrap())));
        }
    }
    assert_eq!(run("b.json"), first, "the same seed gives the same figures");
    // What cannot be simulated is refused, saying why.
    let refuse = |args: &[&str], needle: &str| {
        let mut all = vec!["adapt", bm.to_str().unwrap()];
        all.extend_from_slice(args);
        assert_error(&keel_run(&all), needle);
    };
    refuse(
        &["--data", "basicmotions", "--k", "10"],
        "--k 10: class 0 has 10 windows",
    );
    refuse(
        &["--data", "basicmotions", "--draws", "0"],
        "--draws and every --k must be at least 1",
    );
    refuse(&["--data", "arrowhead"], "is not one the model generates");
    let grid = fixtures.join("grid25/generator.kq8");
    assert_error(
        &keel_run(&["adapt", grid.to_str().unwrap(), "--data", "basicmotions"]),
        "adaptation needs a conditional model",
    );
}
