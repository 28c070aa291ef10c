//! The classic augmentations the study measures Keel against, each on its own (Um et al. 2017:
//! jitter, scaling, magnitude warp, time warp; Le Guennec et al. 2016: window warp).

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

    /// The name in eval.json and on the command line.
    pub fn key(self) -> &'static str {
        match self {
            Classic::Jitter => "jitter",
            Classic::Scaling => "scaling",
            Classic::MagnitudeWarp => "magnitude-warp",
            Classic::TimeWarp => "time-warp",
            Classic::WindowWarp => "window-warp",
        }
    }

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

/// `per_class` augmented series per class, each `kind` applied to a random series of the class;
/// with each copy's source (its row in `x`), so that cross-validation can leave out the copies of
/// a held-out series.
pub fn augment(
    (x, y): Labelled,
    shape: [usize; 2],
    classes: usize,
    per_class: usize,
    kind: Classic,
    seed: u64,
) -> Augmented {
    let dim = shape[0] * shape[1];
    let mut rng = Pcg64Mcg::seed_from_u64(seed ^ 0xa09);
    let mut out = Augmented::default();
    for class in 0..classes {
        let idx: Vec<usize> = (0..y.len()).filter(|&i| y[i] == class).collect();
        if idx.is_empty() {
            continue;
        }
        for _ in 0..per_class {
            let src = idx[rng.random_range(0..idx.len())];
            out.x
                .extend(kind.apply(&x[src * dim..][..dim], shape, &mut rng));
            out.y.push(class);
            out.source.push(src);
        }
    }
    out
}

/// Augmented copies, class by class: values, classes and the row each was made from.
#[derive(Debug, Default)]
pub struct Augmented {
    pub x: Vec<f32>,
    pub y: Vec<usize>,
    pub source: Vec<usize>,
}

fn normal(rng: &mut Pcg64Mcg) -> f32 {
    let v: f64 = StandardNormal.sample(rng);
    v as f32
}
