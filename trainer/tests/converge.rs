//! `train.steps = "auto"`: a run that stops when converged says why, and one that cannot measure
//! its quality says so and trains to its cap; a schedule that needs the run's length is refused.

use crate::common::{auto_ring8_args, keel, keel_with, stderr};

#[test]
fn an_auto_run_stops_when_its_quality_stops_improving_and_says_why() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let o = keel_with(&auto_ring8_args(&[], &out));
    assert!(o.status.success(), "{}", stderr(&o));
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let c = &s["convergence"];
    let stopped = c["stopped"].as_str().unwrap();
    assert!(stopped.starts_with("converged"), "{c}");
    assert!(s["steps"].as_u64().unwrap() < 8000, "{s}");
    assert_eq!(
        c["lr_cuts"], 1,
        "stable cuts its rates once before it stops: {c}"
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("stopped: converged"));
    // Every evaluation's measure is in metrics.csv, and the best is among them.
    let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert!(csv.lines().next().unwrap().ends_with(",quality"));
    let q: Vec<f64> = csv
        .lines()
        .skip(1)
        .filter_map(|l| l.rsplit(',').next().unwrap().parse().ok())
        .collect();
    assert!(q.len() >= 5, "{q:?}");
    let best = c["best"].as_f64().unwrap();
    assert!(
        q.iter().any(|&v| (v - best).abs() < 1e-6 * best.max(1e-9)),
        "{best} {q:?}"
    );
    // The run ends in a success a user would accept, in the state of its lowest measure: the
    // metrics it reports are that evaluation's row, and the generator is that step's.
    let m = &s["final_metrics"];
    assert_eq!(m["modes"], 8, "{m}");
    let rows: Vec<Vec<&str>> = csv.lines().map(|l| l.split(',').collect()).collect();
    let col = |name: &str| rows[0].iter().position(|&h| h == name).unwrap();
    let (q, hq, modes) = (col("quality"), col("hq_pct"), col("modes"));
    let lowest = rows[1..]
        .iter()
        .filter_map(|r| Some((r[q].parse::<f64>().ok()?, r)))
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .unwrap()
        .1;
    let last_step = s["steps"].as_u64().unwrap();
    let kept = match c["kept_step"].as_u64() {
        Some(k) => {
            assert!(k < last_step, "{c}");
            assert!(String::from_utf8_lossy(&o.stdout).contains(&format!("state of step {k}")));
            k
        }
        None => last_step,
    };
    assert_eq!(
        lowest[0],
        kept.to_string(),
        "kept a state other than the lowest measure's"
    );
    assert_eq!(lowest[modes], m["modes"].to_string());
    assert_eq!(
        lowest[hq].parse::<f64>().unwrap(),
        m["hq_pct"].as_f64().unwrap()
    );
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("generator.json")).unwrap())
            .unwrap();
    assert_eq!(meta["step"], kept, "{meta}");
}

#[test]
fn keep_best_false_ends_with_the_last_state() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let o = keel_with(&auto_ring8_args(&["--set", "train.keep_best=false"], &out));
    assert!(o.status.success(), "{}", stderr(&o));
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert!(s["convergence"].get("kept_step").is_none(), "{s}");
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("generator.json")).unwrap())
            .unwrap();
    assert_eq!(meta["step"], s["steps"]);
}

#[test]
fn auto_steps_without_a_quality_measure_say_so_and_train_to_the_cap() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = tmp.path().join("points.csv");
    let rows: String = (0..200)
        .map(|i| format!("{},{}\n", (i as f32 * 0.1).sin(), (i as f32 * 0.1).cos()))
        .collect();
    std::fs::write(&csv, format!("x,y\n{rows}")).unwrap();
    let out = tmp.path().join("run");
    let o = keel(&[
        "train",
        "--data",
        csv.to_str().unwrap(),
        "--steps",
        "auto",
        "--set",
        "train.max_steps=60",
        "--quiet",
        "--no-quantize",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("has no quality measure"),
        "{}",
        stderr(&o)
    );
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(s["steps"], 60);
    let why = s["convergence"]["stopped"].as_str().unwrap();
    assert!(
        why.contains("no quality measure") && why.contains("60"),
        "{why}"
    );
}

#[test]
fn a_schedule_that_needs_the_length_is_refused_with_auto_steps() {
    let tmp = tempfile::tempdir().unwrap();
    let o = keel(&[
        "train",
        "--data",
        "ring8",
        "--steps",
        "auto",
        "--set",
        "optim.schedule=cosine",
        "--out",
        tmp.path().join("run").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("optim.schedule") && e.contains("plateau"), "{e}");
    assert!(!tmp.path().join("run").exists());
    // Neither a word other than auto nor a zero is a step count.
    for bad in ["train.steps=forever", "train.steps=0"] {
        let o = keel(&[
            "train",
            "--data",
            "ring8",
            "--set",
            bad,
            "--out",
            "/nonexistent/x",
        ]);
        assert_eq!(o.status.code(), Some(1), "{bad}: {}", stderr(&o));
        assert!(stderr(&o).contains("train.steps"), "{bad}: {}", stderr(&o));
    }
}
