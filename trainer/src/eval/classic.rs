//! The classic augmentations the study measures Keel against, each on its own (Um et al. 2017:
//! jitter, scaling, magnitude warp, time warp; Le Guennec et al. 2016: window warp), and the
//! choice of the best one by cross-validation on the k labelled series alone.

use crate::train::warp_curve;
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use rand_pcg::Pcg64Mcg;
use serde::Serialize;

/// Labelled series: values (`[n, channels · length]`) and one class per series.
pub type Labelled<'a> = (&'a [f32], &'a [usize]);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Classic {
    /// Gaussian noise, σ 0.05 (normalised units).
    Jitter,
    /// One factor per channel, N(1, 0.1).
    Scaling,
    /// A smooth random curve (4 knots, σ 0.2) multiplies each channel.
    MagnitudeWarp,
    /// Resampled along a smoothly distorted clock (4 knots, σ 0.2).
    TimeWarp,
    /// A window of 10 % of the length sped up or slowed down ×2, the series resampled to its length.
    WindowWarp,
}

impl Classic {
    pub const ALL: [Classic; 5] = [
        Classic::Jitter,
        Classic::Scaling,
        Classic::MagnitudeWarp,
        Classic::TimeWarp,
        Classic::WindowWarp,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Classic::Jitter => "jitter",
            Classic::Scaling => "scaling",
            Classic::MagnitudeWarp => "magnitude warp",
            Classic::TimeWarp => "time warp",
            Classic::WindowWarp => "window warp",
        }
    }

    /// One augmented copy of `src` (`[channels, length]`, channel-major).
    pub fn apply(self, src: &[f32], [c, t]: [usize; 2], rng: &mut Pcg64Mcg) -> Vec<f32> {
        let mut out = src.to_vec();
        // Window warp: one window and one clock rate (×2 faster or slower) for every channel.
        let len = (t / 10).clamp(2.min(t), t);
        let window = (self == Classic::WindowWarp && t > 0).then(|| {
            let start = rng.random_range(0..=t - len);
            let rate = if rng.random_bool(0.5) { 2.0 } else { 0.5 };
            (start..start + len, rate)
        });
        for ch in 0..c {
            let (seg, o) = (&src[ch * t..(ch + 1) * t], &mut out[ch * t..(ch + 1) * t]);
            match self {
                Classic::Jitter => o.iter_mut().for_each(|v| *v += 0.05 * normal(rng)),
                Classic::Scaling => {
                    let s = 1.0 + 0.1 * normal(rng);
                    o.iter_mut().for_each(|v| *v *= s);
                }
                Classic::MagnitudeWarp => {
                    let w = warp_curve(rng, t, 4, 0.2);
                    o.iter_mut().zip(w).for_each(|(v, w)| *v *= w);
                }
                Classic::TimeWarp => resample(seg, &warp_curve(rng, t, 4, 0.2), o),
                Classic::WindowWarp => {
                    if let Some((w, rate)) = &window {
                        let clock: Vec<f32> = (0..t)
                            .map(|i| if w.contains(&i) { *rate } else { 1.0 })
                            .collect();
                        resample(seg, &clock, o);
                    }
                }
            }
        }
        out
    }
}

/// `out[i]` = `seg` read at the clock `Σ speed` (rescaled to span the series), linearly interpolated.
fn resample(seg: &[f32], speed: &[f32], out: &mut [f32]) {
    let t = seg.len();
    if t < 2 {
        out.copy_from_slice(seg);
        return;
    }
    let mut clock = Vec::with_capacity(t);
    let mut acc = 0.0f64;
    for s in speed {
        clock.push(acc);
        acc += s.max(0.05) as f64;
    }
    let scale = (t - 1) as f64 / clock[t - 1].max(1e-9);
    for (i, v) in out.iter_mut().enumerate() {
        let p = (clock[i] * scale).clamp(0.0, (t - 1) as f64);
        let j = (p.floor() as usize).min(t - 2);
        let u = (p - j as f64) as f32;
        *v = seg[j] * (1.0 - u) + seg[j + 1] * u;
    }
}

/// `per_class` augmented series per class, each `kind` applied to a random series of the class.
pub fn augment(
    (x, y): Labelled,
    shape: [usize; 2],
    classes: usize,
    per_class: usize,
    kind: Classic,
    seed: u64,
) -> (Vec<f32>, Vec<usize>) {
    let dim = shape[0] * shape[1];
    let mut rng = Pcg64Mcg::seed_from_u64(seed ^ 0xa09);
    let (mut ox, mut oy) = (Vec::new(), Vec::new());
    for class in 0..classes {
        let idx: Vec<usize> = (0..y.len()).filter(|&i| y[i] == class).collect();
        if idx.is_empty() {
            continue;
        }
        for _ in 0..per_class {
            let src = &x[idx[rng.random_range(0..idx.len())] * dim..][..dim];
            ox.extend(kind.apply(src, shape, &mut rng));
            oy.push(class);
        }
    }
    (ox, oy)
}

/// The augmentation whose `accuracy(train, held_out)` is best over folds of the k labelled
/// series (fold i holds out the i-th series of every class, up to 5 folds); `None` with fewer
/// than 2 series in some class. It sees only `(x, y)`: never the test split.
pub fn choose(
    (x, y): Labelled,
    shape: [usize; 2],
    classes: usize,
    per_class: usize,
    seed: u64,
    accuracy: &mut dyn FnMut(Labelled, Labelled) -> f64,
) -> Option<Classic> {
    let dim = shape[0] * shape[1];
    // Position of each series within its class.
    let mut seen = vec![0usize; classes];
    let rank: Vec<usize> = y
        .iter()
        .map(|&c| {
            seen[c] += 1;
            seen[c] - 1
        })
        .collect();
    let folds = seen.iter().copied().min().unwrap_or(0).min(5);
    if folds < 2 {
        return None;
    }
    let mut best = (f64::NEG_INFINITY, Classic::Jitter);
    for kind in Classic::ALL {
        let mut total = 0.0;
        for fold in 0..folds {
            let (mut tx, mut ty, mut hx, mut hy) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for (i, &c) in y.iter().enumerate() {
                let row = &x[i * dim..(i + 1) * dim];
                if rank[i] % folds == fold {
                    hx.extend_from_slice(row);
                    hy.push(c);
                } else {
                    tx.extend_from_slice(row);
                    ty.push(c);
                }
            }
            let (ax, ay) = augment(
                (&tx, &ty),
                shape,
                classes,
                per_class,
                kind,
                seed + fold as u64,
            );
            let train = ([tx, ax].concat(), [ty, ay].concat());
            total += accuracy((&train.0, &train.1), (&hx, &hy));
        }
        if total > best.0 {
            best = (total, kind);
        }
    }
    Some(best.1)
}

fn normal(rng: &mut Pcg64Mcg) -> f32 {
    let v: f64 = StandardNormal.sample(rng);
    v as f32
}
