//! A quality measure for series that needs no test data: the Fréchet distance between the real
//! training windows and generated ones in MiniRocket feature space (fitted on the real windows),
//! with diagonal covariances — Σ_f (μ_real − μ_gen)² + (σ_real − σ_gen)² over the 9,996 PPV
//! features. Diagonal, because a few dozen real windows cannot estimate a 9,996² covariance; the
//! measure is for comparing a run with itself over time (when to stop), and `keel eval`'s
//! discriminative score is what it is validated against.

use super::minirocket::MiniRocket;
use crate::data::Normalizer;
use crate::model::Generator;
use crate::sample::{sample, EVAL_SEED_OFFSET};
use burn::tensor::Device;

/// Generated windows per measurement (cycling through the classes).
pub const FRECHET_SAMPLES: usize = 256;

pub struct FrechetProbe {
    rocket: MiniRocket,
    real: Moments,
}

struct Moments {
    mean: Vec<f64>,
    std: Vec<f64>,
}

impl Moments {
    fn of(features: &[f32], width: usize) -> Self {
        let n = (features.len() / width).max(1) as f64;
        let mut mean = vec![0.0; width];
        let mut sq = vec![0.0; width];
        for row in features.chunks_exact(width) {
            for ((m, s), &v) in mean.iter_mut().zip(&mut sq).zip(row) {
                *m += v as f64;
                *s += (v as f64) * (v as f64);
            }
        }
        let std = mean
            .iter_mut()
            .zip(&sq)
            .map(|(m, &s)| {
                *m /= n;
                (s / n - *m * *m).max(0.0).sqrt()
            })
            .collect();
        Self { mean, std }
    }
}

impl FrechetProbe {
    /// Fits the transform and the real moments on `real` (channel-major windows of `shape`).
    pub fn fit(real: &[f32], shape: [usize; 2], seed: u64) -> Self {
        let rocket = MiniRocket::fit(real, shape, seed);
        let real = Moments::of(&rocket.transform(real), rocket.features());
        Self { rocket, real }
    }

    /// The distance of generator `g` (an inference copy) of the run seeded `seed`: its windows
    /// from fixed latents, in real units — what training measures and `keel eval` reports.
    pub fn generator_distance(
        &self,
        g: &Generator,
        norm: &Normalizer,
        seed: u64,
        device: &Device,
    ) -> f64 {
        let x = sample(g, norm, FRECHET_SAMPLES, seed + EVAL_SEED_OFFSET, device);
        self.distance(&x)
    }

    /// The distance of `generated` windows (same shape, real units) from the real ones.
    pub fn distance(&self, generated: &[f32]) -> f64 {
        let g = Moments::of(&self.rocket.transform(generated), self.rocket.features());
        let mut d = 0.0;
        for f in 0..self.real.mean.len() {
            let dm = self.real.mean[f] - g.mean[f];
            let ds = self.real.std[f] - g.std[f];
            d += dm * dm + ds * ds;
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sines(n: usize, freq: f32, noise: f32) -> Vec<f32> {
        (0..n)
            .flat_map(|i| {
                (0..64).map(move |t| {
                    (freq * t as f32 + i as f32).sin()
                        + noise * ((i * 64 + t) as f32 * 12.9898).sin()
                })
            })
            .collect()
    }

    #[test]
    fn the_distance_is_zero_on_itself_and_grows_as_windows_differ() {
        let real = sines(40, 0.3, 0.0);
        let p = FrechetProbe::fit(&real, [1, 64], 0);
        assert!(p.distance(&real) < 1e-9);
        let near = p.distance(&sines(40, 0.3, 0.2));
        let far = p.distance(&sines(40, 0.9, 0.2));
        assert!(0.0 < near && near < far, "{near} {far}");
    }
}
