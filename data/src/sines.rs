//! The Sines set of TimeGAN (Yoon et al. 2019) as its published code draws it (`data_loading.py`,
//! `sine_data_generation`): 5 features of length 24, each x_j = sin(f·j + φ) for steps j = 0…23 with
//! f, φ ~ U[0, 0.1] per sample and feature, mapped to [0, 1] by (x + 1) / 2. The published scores
//! (TimeGAN, Diffusion-TS) were measured on exactly this; the "2π f t, f ~ U[0, 1]" paraphrase with
//! integer t would be a different, aliased set.

use super::{series_columns, Dataset, Split};
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;

pub const FEATURES: usize = 5;
pub const LENGTH: usize = 24;
const TRAIN: usize = 10_000;
const TEST: usize = 2_000;

/// `n` series, channel-major rows of `FEATURES × LENGTH`.
pub fn sines(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = Pcg64Mcg::seed_from_u64(seed ^ 0x7369_6e65_7364_6174);
    let mut out = Vec::with_capacity(n * FEATURES * LENGTH);
    for _ in 0..n {
        for _ in 0..FEATURES {
            let f: f64 = rng.random_range(0.0..0.1);
            let phase: f64 = rng.random_range(0.0..0.1);
            for t in 0..LENGTH {
                let x = (f * t as f64 + phase).sin();
                out.push(((x + 1.0) * 0.5) as f32);
            }
        }
    }
    out
}

/// 10,000 training series and 2,000 held out (a different draw), unlabelled.
pub fn dataset(seed: u64) -> Dataset {
    Dataset {
        name: "sines".into(),
        dim: FEATURES * LENGTH,
        points: sines(TRAIN, seed),
        columns: series_columns(FEATURES, LENGTH),
        shape: Some([FEATURES, LENGTH]),
        test: Some(Split {
            points: sines(TEST, seed.wrapping_add(1_000_003)),
            labels: Vec::new(),
        }),
        ..Default::default()
    }
}
