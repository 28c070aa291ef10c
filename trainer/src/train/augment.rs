//! DiffAugment for series: jitter, per-channel scaling, circular time shift and magnitude warp,
//! drawn per sample and applied to real and fake D inputs alike as `gather(x · m, shift) + noise`,
//! which is differentiable, so G learns through the augmentation. ADA (Karras et al. 2020) sets the
//! probability from how sure D is on real data.

use crate::config::AugmentConfig;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::RngExt;
use rand_distr::{Distribution, StandardNormal};
use rand_pcg::Pcg64Mcg;

/// Serialisable: a checkpoint carries ADA's probability and its running tally.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct Augmenter {
    cfg: AugmentConfig,
    channels: usize,
    length: usize,
    /// Current probability of each transform.
    pub p: f64,
    sign_sum: f64,
    sign_count: usize,
    updates: usize,
}

/// One batch's draw: what `apply` does to it.
pub struct Draw {
    scale: Tensor<2>,
    index: Option<Tensor<2, Int>>,
    noise: Option<Tensor<2>>,
}

impl Augmenter {
    pub fn new(cfg: &AugmentConfig, shape: [usize; 2]) -> Self {
        Self {
            cfg: cfg.clone(),
            channels: shape[0],
            length: shape[1],
            p: cfg.p,
            sign_sum: 0.0,
            sign_count: 0,
            updates: 0,
        }
    }

    /// Augments a batch `[B, C·T]` with freshly drawn transforms (identity where none fired).
    pub fn augment(&self, rng: &mut Pcg64Mcg, x: Tensor<2>, device: &Device) -> Tensor<2> {
        if self.p <= 0.0 {
            return x;
        }
        let [b, _] = x.dims();
        self.draw(rng, b, device).apply(x)
    }

    pub fn draw(&self, rng: &mut Pcg64Mcg, batch: usize, device: &Device) -> Draw {
        let (c, t) = (self.channels, self.length);
        let n = c * t;
        let a = &self.cfg;
        let mut scale = vec![1.0f32; batch * n];
        let mut index: Vec<i64> = Vec::new();
        let mut noise: Vec<f32> = Vec::new();
        let fire = |rng: &mut Pcg64Mcg, strength: f64| {
            strength > 0.0 && rng.random_range(0.0..1.0) < self.p
        };
        for s in 0..batch {
            let row = &mut scale[s * n..(s + 1) * n];
            if fire(rng, a.scaling) {
                for ch in 0..c {
                    let f = 1.0 + a.scaling * normal(rng);
                    row[ch * t..(ch + 1) * t]
                        .iter_mut()
                        .for_each(|v| *v *= f as f32);
                }
            }
            if fire(rng, a.magnitude_warp) {
                for ch in 0..c {
                    let curve = warp_curve(rng, t, a.warp_knots, a.magnitude_warp);
                    for (v, w) in row[ch * t..(ch + 1) * t].iter_mut().zip(curve) {
                        *v *= w;
                    }
                }
            }
            let max_shift = (a.time_shift * t as f64).floor() as i64;
            let shift = if max_shift > 0 && fire(rng, a.time_shift) {
                rng.random_range(-max_shift..=max_shift)
            } else {
                0
            };
            if shift != 0 && index.is_empty() {
                index = (0..batch).flat_map(|_| 0..n as i64).collect();
            }
            if shift != 0 {
                let t = t as i64;
                for (i, v) in index[s * n..(s + 1) * n].iter_mut().enumerate() {
                    let (ch, step) = (i as i64 / t, i as i64 % t);
                    *v = ch * t + (step - shift).rem_euclid(t);
                }
            }
            if fire(rng, a.jitter) {
                if noise.is_empty() {
                    noise = vec![0.0; batch * n];
                }
                for v in &mut noise[s * n..(s + 1) * n] {
                    *v = (a.jitter * normal(rng)) as f32;
                }
            }
        }
        Draw {
            scale: Tensor::from_data(TensorData::new(scale, [batch, n]), device),
            index: (!index.is_empty())
                .then(|| Tensor::from_data(TensorData::new(index, [batch, n]), device)),
            noise: (!noise.is_empty())
                .then(|| Tensor::from_data(TensorData::new(noise, [batch, n]), device)),
        }
    }

    /// ADA: record D's raw outputs on real samples; every `ada_interval` D updates move p by
    /// sign(E[sign D(real)] − target) · images / ada_speed.
    pub fn observe(&mut self, d_real: &[f32], batch: usize) {
        if self.cfg.ada_target <= 0.0 {
            return;
        }
        self.sign_sum += d_real.iter().map(|v| v.signum() as f64).sum::<f64>();
        self.sign_count += d_real.len();
        self.updates += 1;
        if self.updates.is_multiple_of(self.cfg.ada_interval) && self.sign_count > 0 {
            let r_t = self.sign_sum / self.sign_count as f64;
            let step = (batch * self.cfg.ada_interval) as f64 / self.cfg.ada_speed;
            self.p =
                (self.p + (r_t - self.cfg.ada_target).signum() * step).clamp(0.0, self.cfg.p_max);
            self.sign_sum = 0.0;
            self.sign_count = 0;
        }
    }
}

impl Draw {
    pub fn apply(&self, x: Tensor<2>) -> Tensor<2> {
        let mut y = x.mul(self.scale.clone());
        if let Some(i) = &self.index {
            y = y.gather(1, i.clone());
        }
        if let Some(n) = &self.noise {
            y = y + n.clone();
        }
        y
    }
}

fn normal(rng: &mut Pcg64Mcg) -> f64 {
    StandardNormal.sample(rng)
}

/// A smooth random curve around 1 over `len` steps: `knots` interior knots plus both ends, each
/// N(1, σ²), joined by Catmull-Rom cubics (Um et al. use a cubic spline).
pub fn warp_curve(rng: &mut Pcg64Mcg, len: usize, knots: usize, sigma: f64) -> Vec<f32> {
    let k: Vec<f64> = (0..knots + 2).map(|_| 1.0 + sigma * normal(rng)).collect();
    let segs = (knots + 1) as f64;
    (0..len)
        .map(|t| {
            let pos = if len > 1 {
                t as f64 / (len - 1) as f64 * segs
            } else {
                0.0
            };
            let i = (pos.floor() as usize).min(knots);
            let u = pos - i as f64;
            let at = |j: isize| k[j.clamp(0, k.len() as isize - 1) as usize];
            let (p0, p1, p2, p3) = (
                at(i as isize - 1),
                at(i as isize),
                at(i as isize + 1),
                at(i as isize + 2),
            );
            let v = 0.5
                * (2.0 * p1
                    + (p2 - p0) * u
                    + (2.0 * p0 - 5.0 * p1 + 4.0 * p2 - p3) * u * u
                    + (3.0 * p1 - p0 - 3.0 * p2 + p3) * u * u * u);
            v as f32
        })
        .collect()
}
