//! The 2-D mode-collapse benchmarks of VEEGAN / PacGAN, exactly as published.

use super::Dataset;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};
use rand_pcg::Pcg64Mcg;

pub const BUILTIN_NAMES: &[&str] = &["ring8", "grid25", "basicmotions", "sines"];

/// BasicMotions (UEA archive), compiled in: see `data/assets/README.md`.
const BASICMOTIONS_CSV: &str = include_str!("../assets/basicmotions.csv");

/// PacGAN trains on 100k fixed points.
const TRAIN_POINTS: usize = 100_000;

/// An isotropic Gaussian mixture with equal weights.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Mixture {
    pub centres: Vec<[f64; 2]>,
    pub std: f64,
}

impl Mixture {
    /// 8 modes on the unit circle at angles 2πi/8 (8 distinct angles, not linspace(0, 2π, 8)), std 0.01.
    pub fn ring8() -> Self {
        let centres = (0..8)
            .map(|i| {
                let a = 2.0 * std::f64::consts::PI * i as f64 / 8.0;
                [a.cos(), a.sin()]
            })
            .collect();
        Self { centres, std: 0.01 }
    }

    /// 25 modes at {−4, −2, 0, 2, 4}², std 0.05.
    pub fn grid25() -> Self {
        let v = [-4.0, -2.0, 0.0, 2.0, 4.0];
        let centres = v
            .iter()
            .flat_map(|&x| v.iter().map(move |&y| [x, y]))
            .collect();
        Self { centres, std: 0.05 }
    }

    pub fn sample(&self, n: usize, seed: u64) -> Vec<f32> {
        let mut rng = Pcg64Mcg::seed_from_u64(seed ^ 0x6b65_656c_6461_7461);
        let normal = Normal::new(0.0, self.std).expect("std > 0");
        let mut out = Vec::with_capacity(n * 2);
        for _ in 0..n {
            let c = self.centres[rand::RngExt::random_range(&mut rng, 0..self.centres.len())];
            out.push((c[0] + normal.sample(&mut rng)) as f32);
            out.push((c[1] + normal.sample(&mut rng)) as f32);
        }
        out
    }

    /// The mixture of a built-in dataset, by name.
    pub fn named(name: &str) -> Option<Mixture> {
        match name {
            "ring8" => Some(Mixture::ring8()),
            "grid25" => Some(Mixture::grid25()),
            _ => None,
        }
    }
}

pub fn builtin(name: &str, seed: u64) -> Option<Dataset> {
    match name {
        "sines" => return Some(super::sines::dataset(seed)),
        "basicmotions" => {
            let ds = super::series::parse_series_csv(
                std::path::Path::new("basicmotions.csv"),
                BASICMOTIONS_CSV,
            )
            .expect("the bundled BasicMotions parses");
            return Some(ds);
        }
        _ => {}
    }
    let mixture = Mixture::named(name)?;
    Some(Dataset {
        name: name.to_string(),
        dim: 2,
        points: mixture.sample(TRAIN_POINTS, seed),
        columns: vec!["x".into(), "y".into()],
        mixture: Some(mixture),
        ..Default::default()
    })
}
