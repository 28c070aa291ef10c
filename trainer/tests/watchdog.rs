//! The watchdog against real faults: each injected fault is caught within a stated number of steps
//! and the run recovers to all modes, where the same run unwatched ends collapsed or NaN. And the
//! slow detectors (vanishing, oscillation) and the policies against step figures made to show them.

use crate::common::{keel, stderr};
use keel_trainer::artifacts::Summary;
use keel_trainer::config::{ConfigBuilder, TrainConfig};
use keel_trainer::eval::ModeMetrics;
use keel_trainer::train::{StepStats, TrainData, Trainer};
use keel_trainer::watch::{Event, Kind, Verdict, Watchdog};
use std::path::Path;

/// Where the faults strike, and the run length: `stable` on ring8 has all 8 modes by 3,000 steps.
const FAULT_STEP: usize = 1500;
const STEPS: &str = "3000";

fn train(out: &Path, fault: &str, watched: bool) -> Summary {
    let inject = format!("{fault}@{FAULT_STEP}");
    let watch = format!("watch.enabled={watched}");
    let o = keel(&[
        "train",
        "--data",
        "ring8",
        "--steps",
        STEPS,
        "--quiet",
        "--no-quantize",
        "--out",
        out.to_str().unwrap(),
        "--inject",
        &inject,
        "--set",
        &watch,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(out.join("summary.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn events(run: &Path) -> Vec<Event> {
    std::fs::read_to_string(run.join("events.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Watched: one rollback, fired within `within` steps of the fault, and all 8 modes at the end.
/// Unwatched: fewer modes, almost no HQ sample, or NaN.
fn caught_and_recovered(fault: &str, within: usize) {
    let tmp = tempfile::tempdir().unwrap();
    let (on, off) = (tmp.path().join("on"), tmp.path().join("off"));

    let s = train(&on, fault, true);
    let ev = events(&on);
    assert_eq!(
        ev.len(),
        1,
        "{fault}: exactly one event, no false alarm after: {ev:?}"
    );
    let e = &ev[0];
    assert_eq!(e.finding.kind, Kind::Divergence, "{e}");
    assert!(
        e.step > FAULT_STEP && e.step <= FAULT_STEP + within,
        "{fault}: caught at step {}, fault at {FAULT_STEP}",
        e.step
    );
    assert_eq!(e.action, "rollback");
    assert!(e.to_step.unwrap() <= FAULT_STEP, "{e}");
    let w = s.watch.as_ref().unwrap();
    assert_eq!((w.rollbacks, w.verdict.as_str()), (1, "recovered"));
    assert_eq!(w.injected, [format!("{fault}@{FAULT_STEP}")]);
    let m = s.final_metrics.as_ref().unwrap();
    assert!(
        m.modes == 8 && m.hq_pct >= 80.0,
        "{fault}: watched run did not recover: {m:?}"
    );
    assert!(on.join("losses.png").exists());

    let s = train(&off, fault, false);
    assert!(s.watch.is_none());
    let m = s.final_metrics.as_ref().unwrap();
    let failed = m.modes < 8 || m.hq_pct < 20.0 || !s.final_loss_d.is_finite();
    assert!(failed, "{fault}: the unwatched run survived: {m:?}");
}

#[test]
fn an_lr_spike_is_caught_at_the_next_check_and_recovered() {
    caught_and_recovered("lr-spike", 50);
}

#[test]
fn a_nan_batch_is_caught_on_its_step_and_recovered() {
    caught_and_recovered("nan-batch", 1);
}

#[test]
fn a_boosted_discriminator_is_caught_at_the_next_check_and_recovered() {
    caught_and_recovered("d-boost", 50);
}

/// A small ring8 trainer whose watchdog checks every 10 steps from step 100.
fn trainer(extra: &[&str]) -> (TrainConfig, Trainer, Vec<f32>) {
    let mut b = ConfigBuilder::new()
        .recipe("stable")
        .unwrap()
        .set("model.g_width=16")
        .unwrap()
        .set("model.d_width=16")
        .unwrap()
        .set("watch.every=10")
        .unwrap()
        .set("watch.warmup=100")
        .unwrap()
        .set("watch.snapshot_every=50")
        .unwrap()
        .set("watch.samples=64")
        .unwrap()
        // The generator is untrained here: its spread says nothing.
        .set("watch.min_diversity=0")
        .unwrap();
    for s in extra {
        b = b.set(s).unwrap();
    }
    let cfg = b.build().unwrap();
    let data = keel_trainer::data::builtin("ring8", 0).unwrap();
    let points: Vec<f32> = data.points[..2000].to_vec();
    let t = Trainer::new(
        cfg.clone(),
        TrainData::points(points.clone(), 2),
        burn::tensor::Device::flex().autodiff(),
    )
    .unwrap();
    (cfg, t, points)
}

fn healthy(step: usize) -> StepStats {
    StepStats {
        loss_d: 1.3 + 0.01 * ((step % 7) as f64),
        loss_g: 0.8,
        d_real: 0.1,
        d_fake: -0.1,
        grad_norm_d: 1.0 + 0.05 * ((step % 5) as f64),
        grad_norm_g: 1.0 + 0.05 * ((step % 3) as f64),
        d_acc: 0.55,
        ..Default::default()
    }
}

/// Feeds `stats(step)` as the figures of steps first..last, advancing the trainer's step count
/// by hand (the networks do not move); returns the first verdict that is not healthy.
fn feed(
    w: &mut Watchdog,
    t: &mut Trainer,
    last: usize,
    stats: impl Fn(usize) -> StepStats,
) -> Option<(usize, Verdict)> {
    feed_with(w, t, last, stats, |_| None)
}

/// `feed`, with the mode metrics `modes(step)` where taken.
fn feed_with(
    w: &mut Watchdog,
    t: &mut Trainer,
    last: usize,
    stats: impl Fn(usize) -> StepStats,
    modes: impl Fn(usize) -> Option<ModeMetrics>,
) -> Option<(usize, Verdict)> {
    while t.step < last {
        t.step += 1;
        let m = modes(t.step);
        let v = w.observe(t, &stats(t.step), m.as_ref()).unwrap();
        if v != Verdict::Healthy {
            return Some((t.step, v));
        }
    }
    None
}

#[test]
fn a_discriminator_that_wins_outright_is_vanishing_and_gets_r1() {
    let (cfg, mut t, points) = trainer(&[]);
    let mut w = Watchdog::new(&cfg, &t, &points, &[], 2, None).unwrap();
    assert_eq!(feed(&mut w, &mut t, 300, healthy), None, "no false alarm");
    // From step 300, D is always right and G's gradient is 1/1000 of what it was.
    let wins = |s: usize| StepStats {
        d_acc: 1.0,
        grad_norm_g: 1e-3,
        ..healthy(s)
    };
    let (step, v) = feed(&mut w, &mut t, 400, wins).expect("vanishing caught");
    assert!(
        step <= 300 + 3 * 10,
        "patience 3 checks of 10 steps, caught at {step}"
    );
    assert_eq!(v, Verdict::RolledBack { to_step: 250 });
    let e = w.events().last().unwrap();
    assert_eq!(
        (e.finding.kind, e.finding.detector.as_str()),
        (Kind::Vanishing, "d-wins")
    );
    assert_eq!(e.changes, ["penalty.r1 1e-2 → 4e-2"]);
    assert_eq!(t.cfg.penalty.r1, 0.04);
    assert_eq!(t.step, 250);

    // Without any penalty, the remedy switches R1 on at its floor (and does not also multiply it).
    let (cfg, mut t, points) = trainer(&["penalty.r1=0"]);
    let mut w = Watchdog::new(&cfg, &t, &points, &[], 2, None).unwrap();
    feed(&mut w, &mut t, 300, healthy);
    feed(&mut w, &mut t, 400, wins).expect("vanishing caught");
    assert_eq!(
        w.events().last().unwrap().changes,
        ["penalty.r1 0e0 → 1e-1"]
    );
}

#[test]
fn a_lone_gradient_spike_waits_for_the_next_check_and_a_repeated_one_rolls_back() {
    let spike_at = |at: &'static [usize]| {
        move |s: usize| StepStats {
            grad_norm_d: if at.contains(&s) { 500.0 } else { 1.0 },
            ..healthy(s)
        }
    };
    // One step 500× its median (checks every 10 steps): a strike, cleared by the next clean check
    // (while it stands, no snapshot is trusted or taken).
    let (cfg, mut t, points) = trainer(&[]);
    let mut w = Watchdog::new(&cfg, &t, &points, &[], 2, None).unwrap();
    assert_eq!(feed(&mut w, &mut t, 400, spike_at(&[295])), None);
    assert!(w.events().is_empty(), "{:?}", w.events());

    // Lone spikes at two checks in a row: a divergence, back to the snapshot before the first.
    let (cfg, mut t, points) = trainer(&[]);
    let mut w = Watchdog::new(&cfg, &t, &points, &[], 2, None).unwrap();
    let (_, v) = feed(&mut w, &mut t, 400, spike_at(&[295, 305])).expect("caught");
    assert_eq!(v, Verdict::RolledBack { to_step: 250 });
    let e = w.events().last().unwrap();
    assert_eq!(e.step, 310, "{e}");
    assert_eq!(e.finding.detector, "grad-spike-d", "{e}");
    assert!(
        e.finding
            .detail
            .ends_with("1 steps above 20× at this check, 1 at the one before"),
        "{e}"
    );

    // Two spiking steps in one check: at that check.
    let (cfg, mut t, points) = trainer(&[]);
    let mut w = Watchdog::new(&cfg, &t, &points, &[], 2, None).unwrap();
    feed(&mut w, &mut t, 400, spike_at(&[293, 297])).expect("caught");
    assert_eq!(w.events().last().unwrap().step, 300);

    // `watch.spike_steps = 1`: every spiking step fires, as before.
    let (cfg, mut t, points) = trainer(&["watch.spike_steps=1"]);
    let mut w = Watchdog::new(&cfg, &t, &points, &[], 2, None).unwrap();
    feed(&mut w, &mut t, 400, spike_at(&[295])).expect("caught");
    assert_eq!(w.events().last().unwrap().step, 300);
}

/// Mode metrics every 20 steps: `modes(step)` of 8 modes, 60 % HQ.
fn feed_modes(
    w: &mut Watchdog,
    t: &mut Trainer,
    last: usize,
    modes: impl Fn(usize) -> usize,
) -> Option<(usize, Verdict)> {
    let metrics = |s: usize| {
        s.is_multiple_of(20).then(|| ModeMetrics {
            modes: modes(s),
            modes_strict: modes(s),
            hq_pct: 60.0,
            reverse_kl: None,
            total_modes: 8,
            counts: vec![],
        })
    };
    feed_with(w, t, last, healthy, metrics)
}

#[test]
fn modes_lost_for_a_moment_are_not_a_collapse_but_modes_lost_for_good_are() {
    let (cfg, mut t, points) = trainer(&["watch.mode_patience=3"]);
    let mut w = Watchdog::new(&cfg, &t, &points, &[], 2, None).unwrap();
    assert_eq!(feed_modes(&mut w, &mut t, 300, |_| 8), None);
    // 5 of 8 modes at two snapshots (steps 320, 340), all 8 again at 360: healthy runs do this.
    let dip = |s: usize| if (320..360).contains(&s) { 5 } else { 8 };
    // A run that ends inside the dip is not called healthy.
    assert_eq!(feed_modes(&mut w, &mut t, 340, dip), None);
    let verdict = w.summary(&t, None).verdict;
    assert_eq!(
        verdict,
        "unsettled: modes failing at the last 2 of 3 checks"
    );
    assert_eq!(
        feed_modes(&mut w, &mut t, 400, dip),
        None,
        "no rollback on a dip"
    );
    assert_eq!(w.summary(&t, None).verdict, "healthy");
    // From step 420 on, 5 modes for good: caught at the third low snapshot, back before the drop.
    let (_, v) =
        feed_modes(&mut w, &mut t, 600, |s| if s >= 420 { 5 } else { 8 }).expect("collapse caught");
    assert_eq!(v, Verdict::RolledBack { to_step: 400 });
    let e = w.events().last().unwrap();
    assert_eq!(e.step, 460, "low snapshots at 420, 440, 460");
    assert_eq!(
        (e.finding.kind, e.finding.detector.as_str()),
        (Kind::Collapse, "modes")
    );
}

#[test]
fn a_run_that_ends_with_fewer_modes_than_its_best_is_not_called_healthy() {
    let (cfg, mut t, points) = trainer(&[]);
    let mut w = Watchdog::new(&cfg, &t, &points, &[], 2, None).unwrap();
    // All 8 modes, then 7 from step 400: inside the detector's tolerance (floor 6.4), no rollback.
    let one_lost = |s: usize| if s >= 400 { 7 } else { 8 };
    assert_eq!(feed_modes(&mut w, &mut t, 380, one_lost), None);
    assert_eq!(w.summary(&t, None).verdict, "healthy");
    assert_eq!(feed_modes(&mut w, &mut t, 500, one_lost), None);
    assert_eq!(
        w.summary(&t, None).verdict,
        "ended below its best: 7/8 modes, it had 8"
    );
    // Found again by the last snapshot: healthy.
    assert_eq!(feed_modes(&mut w, &mut t, 520, |_| 8), None);
    assert_eq!(w.summary(&t, None).verdict, "healthy");
}

#[test]
fn swings_that_grow_are_oscillation_and_lower_the_learning_rate() {
    let (cfg, mut t, points) = trainer(&[]);
    let mut w = Watchdog::new(&cfg, &t, &points, &[], 2, None).unwrap();
    assert_eq!(feed(&mut w, &mut t, 300, healthy), None);
    // D's loss alternates between checks with a growing amplitude.
    let swing = |s: usize| {
        let a = 0.2 + (s - 300) as f64 / 200.0;
        StepStats {
            loss_d: 1.3 + if (s / 10).is_multiple_of(2) { a } else { -a },
            ..healthy(s)
        }
    };
    let (_, v) = feed(&mut w, &mut t, 700, swing).expect("oscillation caught");
    assert!(matches!(v, Verdict::RolledBack { .. }));
    let e = w.events().last().unwrap();
    assert_eq!(e.finding.kind, Kind::Oscillation, "{e}");
    assert_eq!(t.cfg.optim.lr_g, 5e-4);
}

#[test]
fn policies_warn_stop_and_give_up_after_max_retries() {
    let nan = |s: usize| StepStats {
        loss_d: f64::NAN,
        ..healthy(s)
    };
    // warn: logged once, training goes on.
    let (cfg, mut t, points) = trainer(&["watch.policy=warn"]);
    let mut w = Watchdog::new(&cfg, &t, &points, &[], 2, None).unwrap();
    assert_eq!(feed(&mut w, &mut t, 120, nan), None);
    assert_eq!(w.events().len(), 1);
    assert_eq!(w.events()[0].action, "warn");

    // stop: the first event ends the run, back at the last trusted state.
    let (cfg, mut t, points) = trainer(&["watch.policy=stop"]);
    let mut w = Watchdog::new(&cfg, &t, &points, &[], 2, None).unwrap();
    feed(&mut w, &mut t, 120, healthy);
    let (_, v) = feed(&mut w, &mut t, 200, nan).unwrap();
    assert!(
        matches!(&v, Verdict::GaveUp(why) if why.starts_with("stopped at step 121")),
        "{v:?}"
    );
    assert_eq!(t.step, 100);

    // recover: a fault that never goes away uses the retries, then gives up.
    let (cfg, mut t, points) = trainer(&["watch.max_retries=2"]);
    let mut w = Watchdog::new(&cfg, &t, &points, &[], 2, None).unwrap();
    let mut verdicts = Vec::new();
    while let Some((_, v)) = feed(&mut w, &mut t, 200, nan) {
        let done = matches!(v, Verdict::GaveUp(_));
        verdicts.push(v);
        if done {
            break;
        }
    }
    assert_eq!(verdicts.len(), 3, "{verdicts:?}");
    assert!(matches!(&verdicts[2], Verdict::GaveUp(why) if why.contains("after 2 rollbacks")));
    assert_eq!(t.cfg.optim.lr_g, 1e-3 * 0.25, "two halvings");
}

#[test]
fn bad_fault_and_shard_arguments_are_refused() {
    let o = keel(&["train", "--inject", "boom@3", "--steps", "1"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("unknown fault `boom`"),
        "{}",
        stderr(&o)
    );
    let o = keel(&["sweep", "--shard", "4/4"]);
    assert!(stderr(&o).contains("0 ≤ I < N"), "{}", stderr(&o));
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("results-0of1.jsonl"), "{\"recipe\": 1}\n").unwrap();
    let o = keel(&["sweep", "merge", tmp.path().to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("results-0of1.jsonl:1"),
        "{}",
        stderr(&o)
    );
}
