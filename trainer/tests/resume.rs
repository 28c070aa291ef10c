//! Crash safety: a run killed with SIGKILL at several points (mid-step, mid-checkpoint write, after a
//! watchdog rollback) and stopped with Ctrl-C, then resumed each time, ends with the same
//! metrics.csv, generator files and events as the same run left alone. A damaged checkpoint is
//! refused and kept; a crash between the checkpoint's two renames still resumes.

use crate::common::{auto_ring8_args, keel, keel_with, stderr};
use keel_trainer::rundir;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const STEPS: &str = "1200";

/// ring8 with a fault the watchdog rolls back (caught at 750, back to 500), checkpoints every 100.
fn run_args(out: &Path) -> Vec<String> {
    [
        "train",
        "--data",
        "ring8",
        "--steps",
        STEPS,
        "--inject",
        "lr-spike@700",
        "--set",
        "train.checkpoint_every=100",
        "--quiet",
        "--no-quantize",
        "--out",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([out.display().to_string()])
    .collect()
}

fn spawn(args: &[String]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_keel"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("keel runs")
}

fn resume_args(out: &Path) -> Vec<String> {
    [
        "train",
        "--resume",
        &out.display().to_string(),
        "--quiet",
        "--no-quantize",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn staging(out: &Path) -> PathBuf {
    out.with_file_name(format!(
        ".{}.partial",
        out.file_name().unwrap().to_string_lossy()
    ))
}

/// Waits until `ready` holds (polling every half millisecond) or the child exits; true if ready.
fn wait_for(child: &mut Child, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if ready() {
            return true;
        }
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    panic!("keel made no progress in 120 s");
}

fn manifest(out: &Path) -> Option<String> {
    std::fs::read_to_string(staging(out).join("checkpoint/resume/MANIFEST")).ok()
}

/// Waits for `n` more checkpoints than the one on disk now.
fn checkpoints_later(child: &mut Child, out: &Path, n: usize) -> bool {
    let mut seen = manifest(out);
    let mut left = n;
    wait_for(child, || {
        let now = manifest(out);
        if now.is_some() && now != seen {
            seen = now;
            left -= 1;
        }
        left == 0
    })
}

/// The step of the trainer snapshot in `dir` (a checkpoint's `trainer/` or `best/`), once readable.
fn snapshot_step(dir: &Path) -> Option<usize> {
    let bytes = std::fs::read(dir.join("snapshot.cbor")).ok()?;
    let v: ciborium::Value = ciborium::from_reader(bytes.as_slice()).ok()?;
    let map = v.as_map()?;
    let (_, step) = map.iter().find(|(k, _)| k.as_text() == Some("step"))?;
    usize::try_from(step.as_integer()?).ok()
}

fn kill9(mut child: Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

fn same_files(a: &Path, b: &Path) {
    for f in [
        "metrics.csv",
        "generator.bpk",
        "generator.onnx",
        "generator.json",
        "events.jsonl",
        "checkpoint/discriminator.bpk",
        "checkpoint/generator-raw.bpk",
    ] {
        let (x, y) = (
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
        );
        assert!(
            x == y,
            "{f} differs between the uninterrupted and the resumed run"
        );
    }
}

#[test]
fn killed_and_resumed_runs_end_bit_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let reference = tmp.path().join("reference");
    let o = keel_with(&run_args(&reference));
    assert!(o.status.success(), "{}", stderr(&o));
    let events = std::fs::read_to_string(reference.join("events.jsonl")).unwrap();
    assert!(
        events.contains("\"rollback\""),
        "the reference run should roll back once: {events}"
    );

    let out = tmp.path().join("killed");
    let mut kills = 0;
    // 1. SIGKILL right after the first checkpoint lands (mid-step).
    let mut c = spawn(&run_args(&out));
    assert!(checkpoints_later(&mut c, &out, 1), "no first checkpoint");
    kill9(c);
    kills += 1;
    // 2. SIGKILL while a checkpoint is being written (its `.new` directory exists).
    let mut c = spawn(&resume_args(&out));
    let writing = staging(&out).join("checkpoint/resume.new");
    assert!(wait_for(&mut c, || writing.exists()), "resume ended early");
    kill9(c);
    kills += 1;
    // 3. SIGKILL after the watchdog's rollback (logged in events.jsonl) and one more checkpoint.
    let mut c = spawn(&resume_args(&out));
    let log = staging(&out).join("events.jsonl");
    assert!(wait_for(&mut c, || std::fs::read_to_string(&log)
        .is_ok_and(|t| t.contains("rollback"))));
    assert!(checkpoints_later(&mut c, &out, 1));
    kill9(c);
    kills += 1;
    // 4. SIGINT (Ctrl-C): a checkpoint, a message, exit status 130.
    let mut c = spawn(&resume_args(&out));
    assert!(checkpoints_later(&mut c, &out, 1));
    let pid = c.id().to_string();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let o = c.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    assert!(stderr(&o).contains("keel train --resume"), "{}", stderr(&o));
    // 5. To the end.
    let o = keel_with(&resume_args(&out));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        !staging(&out).exists(),
        "the staging directory is committed"
    );
    same_files(&reference, &out);
    println!("{kills} SIGKILLs and one Ctrl-C survived: files identical to the uninterrupted run");
}

#[test]
fn a_damaged_checkpoint_is_refused_and_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let mut c = spawn(&run_args(&out));
    assert!(checkpoints_later(&mut c, &out, 2));
    kill9(c);

    // A second process cannot write the same run while one holds it.
    let first = spawn(&resume_args(&out));
    std::thread::sleep(Duration::from_millis(500));
    let o = keel(&["train", "--resume", out.to_str().unwrap(), "--quiet"]);
    kill9(first);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("another keel process"),
        "{}",
        stderr(&o)
    );

    // Starting the run afresh over the interrupted one needs --force.
    let args = run_args(&out);
    let o = keel_with(&args);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--resume"), "{}", stderr(&o));

    // A crash between replace_dir's two renames leaves only `resume.old`: still resumable.
    let ckpt = staging(&out).join("checkpoint/resume");
    let old = staging(&out).join("checkpoint/resume.old");
    if ckpt.exists() {
        if old.exists() {
            std::fs::remove_dir_all(&old).unwrap();
        }
        std::fs::rename(&ckpt, &old).unwrap();
    }

    // One flipped bit in the optimizer state: refused, naming the file, and nothing deleted.
    let victim = old.join("trainer/optim-g.bpk");
    let mut bytes = std::fs::read(&victim).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x10;
    std::fs::write(&victim, &bytes).unwrap();
    let o = keel(&["train", "--resume", out.to_str().unwrap(), "--quiet"]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("damaged") && err.contains("optim-g.bpk"),
        "{err}"
    );
    assert!(
        victim.exists(),
        "the damaged checkpoint is kept for inspection"
    );

    // Mended, the run resumes from `resume.old` and finishes.
    bytes[mid] ^= 0x10;
    std::fs::write(&victim, &bytes).unwrap();

    // But not a checkpoint of another layout (here as keel before checkpoint format 2 wrote it,
    // with no `format`, sealed again): refused, naming the versions, not misread.
    let record = old.join("run.cbor");
    let original = std::fs::read(&record).unwrap();
    let mut value: ciborium::Value = ciborium::from_reader(original.as_slice()).unwrap();
    if let ciborium::Value::Map(entries) = &mut value {
        entries.retain(|(k, _)| k.as_text() != Some("format"));
    }
    let mut older = Vec::new();
    ciborium::into_writer(&value, &mut older).unwrap();
    let reseal = |bytes: &[u8]| {
        std::fs::write(&record, bytes).unwrap();
        std::fs::remove_file(old.join(rundir::MANIFEST)).unwrap();
        rundir::seal(&old).unwrap();
    };
    reseal(&older);
    let o = keel(&["train", "--resume", out.to_str().unwrap(), "--quiet"]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("checkpoint format 0, this keel reads"),
        "{err}"
    );
    reseal(&original);
    let o = keel(&[
        "train",
        "--resume",
        out.to_str().unwrap(),
        "--quiet",
        "--no-quantize",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.join("generator.onnx").is_file());

    // Nothing is left to resume.
    let o = keel(&["train", "--resume", out.to_str().unwrap()]);
    assert!(stderr(&o).contains("finished run"), "{}", stderr(&o));
}

/// `keel ARGS` allowed files of at most `kib` KiB (RLIMIT_FSIZE, SIGXFSZ ignored): writes past it
/// fail with EFBIG, as on a full disk.
fn keel_limited(args: &[String], kib: u32) -> std::process::Output {
    Command::new("bash")
        .args([
            "-c",
            "trap '' XFSZ; ulimit -f \"$1\"; shift; exec \"$@\"",
            "_",
        ])
        .arg(kib.to_string())
        .arg(env!("CARGO_BIN_EXE_keel"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn a_full_disk_leaves_no_partial_file_and_the_last_checkpoint_intact() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let listing = || {
        let mut v: Vec<String> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };

    // No room for the first checkpoint: an error naming the cause, and nothing left behind.
    exits_1_saying(
        &keel_limited(&run_args(&out), 100),
        &["cannot write the checkpoint", "too large"],
    );
    assert!(listing().is_empty(), "left behind: {:?}", listing());

    // A run with two checkpoints, killed; resumed where the next checkpoint cannot be written.
    let mut c = spawn(&run_args(&out));
    assert!(checkpoints_later(&mut c, &out, 2));
    kill9(c);
    let before = manifest(&out).unwrap();
    exits_1_saying(
        &keel_limited(&resume_args(&out), 100),
        &["last checkpoint is intact", "--resume"],
    );
    assert_eq!(manifest(&out).unwrap(), before, "the checkpoint changed");
    let partial = staging(&out).join("checkpoint/resume.new");
    assert!(!partial.exists(), "a half-written checkpoint is left");

    // With room again it finishes.
    let o = keel_with(&resume_args(&out));
    assert!(o.status.success(), "{}", stderr(&o));

    // An output path that cannot be a directory: a clear error before any training.
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let o = keel(&[
        "train",
        "--data",
        "ring8",
        "--steps",
        "10",
        "--out",
        file.join("run").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("a-file"), "{}", stderr(&o));
}

/// A run that failed (exit 1) with every one of `needles` in its error.
fn exits_1_saying(o: &std::process::Output, needles: &[&str]) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    for n in needles {
        assert!(err.contains(n), "stderr lacks `{n}`:\n{err}");
    }
}

/// ring8 trained until converged (`--steps auto`), evaluated and checkpointed every 100 steps.
fn auto_args(out: &Path) -> Vec<String> {
    auto_ring8_args(&["--set", "train.checkpoint_every=100"], out)
}

#[test]
fn an_auto_run_killed_and_resumed_stops_where_the_uninterrupted_one_did() {
    let tmp = tempfile::tempdir().unwrap();
    let reference = tmp.path().join("reference");
    let o = keel_with(&auto_args(&reference));
    assert!(o.status.success(), "{}", stderr(&o));
    let out = tmp.path().join("killed");
    let mut c = spawn(&auto_args(&out));
    assert!(checkpoints_later(&mut c, &out, 5), "no fifth checkpoint");
    kill9(c);
    // The reference ends in the state of an earlier step than its last (`train.keep_best`): kill
    // the resumed run once its checkpoint is past that step, so the last resume takes that state
    // from the checkpoint's `best/`, not from memory.
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(reference.join("summary.json")).unwrap())
            .unwrap();
    let kept = summary["convergence"]["kept_step"]
        .as_u64()
        .expect("the reference run ends below its best state") as usize;
    let mut c = spawn(&resume_args(&out));
    let ckpt = staging(&out).join("checkpoint/resume");
    assert!(
        wait_for(&mut c, || {
            let best = snapshot_step(&ckpt.join("best"));
            let now = snapshot_step(&ckpt.join("trainer"));
            best == Some(kept) && now.is_some_and(|n| n > kept)
        }),
        "the resumed run ended before a checkpoint past step {kept}"
    );
    kill9(c);
    let o = keel_with(&resume_args(&out));
    assert!(o.status.success(), "{}", stderr(&o));
    same_files(&reference, &out);
    let convergence = |d: &Path| {
        let s: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(d.join("summary.json")).unwrap())
                .unwrap();
        (s["steps"].clone(), s["convergence"].clone())
    };
    let (steps, c) = convergence(&reference);
    assert!(
        c["stopped"].as_str().unwrap().starts_with("converged"),
        "{c}"
    );
    assert_eq!((steps, c), convergence(&out));
}
