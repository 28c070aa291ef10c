//! The `keel` binary as users run it: outputs, determinism, and bad input.

use crate::common::{export_to, keel, refused_data, stderr};
use std::path::Path;
use std::process::Output;

/// A fast configuration: small networks, a few hundred steps.
const FAST: &[&str] = &[
    "--steps",
    "200",
    "--set",
    "model.g_width=32",
    "--set",
    "model.d_width=32",
    "--set",
    "train.eval_every=100",
    "-q",
];

fn train(out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["train", "--data", "ring8", "--out", out.to_str().unwrap()];
    args.extend_from_slice(FAST);
    args.extend_from_slice(extra);
    keel(&args)
}

fn assert_fails(o: &Output, needle: &str) {
    assert!(!o.status.success(), "expected failure, got success");
    let e = stderr(o);
    assert!(e.contains(needle), "stderr lacks `{needle}`:\n{e}");
    assert!(!e.contains("panicked"), "panicked:\n{e}");
}

fn only_entry(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn a_run_directory_holds_everything_and_the_same_seed_repeats() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let o = train(&a, &["--seed", "3"]);
    assert!(o.status.success(), "{}", stderr(&o));
    for f in [
        "config.toml",
        "metrics.csv",
        "summary.json",
        "generator.bpk",
        "generator.json",
        "generator.onnx",
        "samples.png",
        "losses.png",
        "checkpoint/discriminator.bpk",
    ] {
        assert!(a.join(f).is_file(), "missing {f}");
    }
    let csv = std::fs::read_to_string(a.join("metrics.csv")).unwrap();
    assert!(csv.starts_with("step,loss_d,loss_g,d_real,d_fake,penalty,grad_norm_d,grad_norm_g"));
    assert!(
        csv.lines()
            .any(|l| l.starts_with("100,") && !l.ends_with(",,,,")),
        "metric snapshot at step 100"
    );
    let config = std::fs::read_to_string(a.join("config.toml")).unwrap();
    assert!(
        config.contains("seed = 3"),
        "the resolved config records the seed"
    );
    let o = train(&b, &["--seed", "3"]);
    assert!(o.status.success());
    assert_eq!(
        csv,
        std::fs::read_to_string(b.join("metrics.csv")).unwrap(),
        "same seed, same metrics.csv"
    );
    let draw =
        |run: &Path| keel(&["sample", run.to_str().unwrap(), "--n", "20", "--seed", "9"]).stdout;
    assert!(draw(&a) == draw(&b), "same seed, same generator");
    let onnx = std::fs::read(a.join("generator.onnx")).unwrap();
    assert!(
        onnx == std::fs::read(b.join("generator.onnx")).unwrap(),
        "same seed, same ONNX bytes"
    );

    // `keel export` writes the same file again, elsewhere; a directory that is no run is refused.
    let again = tmp.path().join("again.onnx");
    assert!(export_to(&a, &again) == onnx, "export is deterministic");
    assert_fails(
        &keel(&["export", tmp.path().to_str().unwrap()]),
        "is not a Keel run directory",
    );

    // Sampling: n rows of D columns, same seed same bytes, another seed other bytes.
    let s1 = keel(&["sample", a.to_str().unwrap(), "--n", "50", "--seed", "1"]);
    assert!(s1.status.success(), "{}", stderr(&s1));
    let text = String::from_utf8(s1.stdout.clone()).unwrap();
    assert_eq!(text.lines().count(), 50);
    assert!(text
        .lines()
        .all(|l| l.split(',').count() == 2 && l.split(',').all(|v| v.parse::<f32>().is_ok())));
    assert_eq!(
        s1.stdout,
        keel(&["sample", a.to_str().unwrap(), "--n", "50", "--seed", "1"]).stdout
    );
    assert_ne!(
        s1.stdout,
        keel(&["sample", a.to_str().unwrap(), "--n", "50", "--seed", "2"]).stdout
    );
    let file = tmp.path().join("s.csv");
    assert!(keel(&[
        "sample",
        a.to_str().unwrap(),
        "--n",
        "10",
        "--out",
        file.to_str().unwrap()
    ])
    .status
    .success());
    assert_eq!(std::fs::read_to_string(file).unwrap().lines().count(), 10);
}

#[test]
fn recipes_are_listed_and_printable() {
    let o = keel(&["recipes"]);
    let out = String::from_utf8_lossy(&o.stdout);
    for r in [
        "vanilla",
        "wgan-clip",
        "wgan-gp",
        "sngan-hinge",
        "r1",
        "stable",
    ] {
        assert!(out.contains(r), "{r} missing from\n{out}");
    }
    let o = keel(&["recipes", "wgan-gp"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("wasserstein"));
}

#[test]
fn bad_names_and_keys_are_refused_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    assert_fails(&train(&out, &["--recipe", "nope"]), "unknown recipe `nope`");
    assert_fails(
        &keel(&[
            "train",
            "--data",
            "ring9",
            "--out",
            out.to_str().unwrap(),
            "-q",
        ]),
        "unknown dataset `ring9`",
    );
    assert_fails(
        &train(&out, &["--set", "optim.lr_gg=1"]),
        "unknown config key `optim.lr_gg`",
    );
    assert_fails(
        &train(&out, &["--set", "optim.lr_g=fast"]),
        "`optim.lr_g` expects a float",
    );
    assert_fails(
        &train(&out, &["--set", "train.batch=0"]),
        "`train.batch` must be at least 1",
    );
    let cfg = tmp.path().join("c.toml");
    std::fs::write(&cfg, "[model]\nwidth = 3\n").unwrap();
    assert_fails(
        &train(&out, &["--config", cfg.to_str().unwrap()]),
        "unknown config key `model.width`",
    );
    assert!(
        only_entry(tmp.path())
            .iter()
            .all(|n| !n.starts_with("run") && !n.contains("partial")),
        "{:?}",
        only_entry(tmp.path())
    );
}

#[test]
fn bad_data_files_name_the_file_line_and_column() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let cases = [
        (
            "letters.csv",
            "x,y\n1,2\n3,abc\n",
            "letters.csv:3: column 2: `abc` is not a number",
        ),
        (
            "ragged.csv",
            "1,2\n3,4,5\n",
            "ragged.csv:2: expected 2 columns",
        ),
        (
            "nan.csv",
            "1,2\nNaN,4\n",
            "nan.csv:2: column 1: `NaN` is not finite",
        ),
        (
            "inf.csv",
            "1,2\n3,inf\n",
            "inf.csv:2: column 2: `inf` is not finite",
        ),
        ("empty.csv", "x,y\n", "empty.csv: no data rows"),
    ];
    for (name, text, needle) in cases {
        let p = tmp.path().join(name);
        std::fs::write(&p, text).unwrap();
        refused_data(&p, &out, needle);
    }
    // A good N × D file trains.
    let p = tmp.path().join("good.csv");
    let rows: String = (0..64)
        .map(|i| format!("{},{},{}\n", i % 4, (i * 7) % 5, i % 3))
        .collect();
    std::fs::write(&p, format!("a,b,c\n{rows}")).unwrap();
    let mut args = vec![
        "train",
        "--data",
        p.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(FAST);
    let o = keel(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = keel(&["sample", out.to_str().unwrap(), "--n", "3"]);
    assert!(String::from_utf8_lossy(&s.stdout)
        .lines()
        .all(|l| l.split(',').count() == 3));
}

#[test]
fn output_directories_are_not_clobbered() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("keep.txt"), "mine").unwrap();
    assert_fails(&train(&out, &[]), "already exists");
    assert_eq!(
        std::fs::read_to_string(out.join("keep.txt")).unwrap(),
        "mine"
    );
    let o = train(&out, &["--force"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.join("summary.json").exists() && !out.join("keep.txt").exists());

    // Under a regular file nothing can be created.
    let blocker = tmp.path().join("file");
    std::fs::write(&blocker, "").unwrap();
    assert_fails(&train(&blocker.join("run"), &[]), "cannot");

    assert_fails(
        &keel(&["sample", tmp.path().to_str().unwrap(), "--n", "5"]),
        "not a Keel run directory",
    );
    assert_fails(
        &keel(&["sample", out.to_str().unwrap(), "--n", "0"]),
        "--n must be at least 1",
    );
}

fn summary(run: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap()
}

#[test]
fn a_short_stable_run_captures_every_mode_of_the_ring() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |recipe: &str| {
        let out = tmp.path().join(recipe);
        let o = keel(&[
            "train",
            "--recipe",
            recipe,
            "--data",
            "ring8",
            "--steps",
            "2500",
            "--set",
            "train.eval_every=2500",
            "-q",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        summary(&out)["final_metrics"].clone()
    };
    let stable = run("stable");
    assert_eq!(stable["modes"], 8, "stable: {stable}");
    assert!(
        stable["hq_pct"].as_f64().unwrap() > 50.0,
        "stable: {stable}"
    );
    assert!(
        stable["reverse_kl"].as_f64().unwrap() < 0.1,
        "stable: {stable}"
    );
    // vanilla is allowed to fail; it is trained so the contrast is visible in the test log.
    eprintln!(
        "ring8, 2500 steps: stable {stable}\nvanilla {}",
        run("vanilla")
    );
}
