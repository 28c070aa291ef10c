//! `keel sweep` as a cluster runs it: two shards into one directory, then `keel sweep merge`.

use crate::common::{keel, stderr};

#[test]
fn two_shards_merge_into_one_table_with_every_run_once() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("sweep");
    let out = out.to_str().unwrap();
    for shard in ["0/2", "1/2"] {
        let o = keel(&[
            "sweep",
            "--recipes",
            "vanilla",
            "--data",
            "ring8",
            "--grid",
            "lr=1e-4,1e-3",
            "--seeds",
            "2",
            "--set",
            "train.steps=20",
            "--set",
            "train.eval_every=10",
            "--set",
            "train.eval_samples=100",
            "--out",
            out,
            "--shard",
            shard,
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(String::from_utf8_lossy(&o.stdout).contains("keel sweep merge"));
    }
    let o = keel(&["sweep", "merge", out]);
    assert!(o.status.success(), "{}", stderr(&o));
    let md = std::fs::read_to_string(tmp.path().join("sweep/sweep.md")).unwrap();
    assert!(
        md.contains("| recipe · data | lr=1e-4 | lr=1e-3 | all | rollbacks | failures flagged |"),
        "{md}"
    );
    assert!(md.contains("| vanilla · ring8 |"), "{md}");
    assert!(md.contains("4 runs from 2 result files"), "{md}");
    let lines = std::fs::read_to_string(tmp.path().join("sweep/sweep.jsonl")).unwrap();
    let mut names: Vec<String> = lines
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            format!("{}-{}", v["point"][0][1], v["seed"])
        })
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 4, "{lines}");
    assert!(tmp.path().join("sweep/heatmap.png").exists());
    // A run's learning rates follow the grid (vanilla: lr_d = lr_g).
    let cfg = std::fs::read_to_string(
        tmp.path()
            .join("sweep/runs/ring8-vanilla-lr1e-3-s1/config.toml"),
    )
    .unwrap();
    assert!(
        cfg.contains("lr_g = 0.001") && cfg.contains("lr_d = 0.001"),
        "{cfg}"
    );
}
