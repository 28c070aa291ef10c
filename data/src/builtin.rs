//! The 2-D mode-collapse benchmarks of VEEGAN / PacGAN, exactly as published.

use super::Dataset;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};
use rand_pcg::Pcg64Mcg;

pub const BUILTIN_NAMES: &[&str] = &[
    "ring8",
    "grid25",
    "basicmotions",
    "sines",
    "arrowhead",
    "japanesevowels",
];

/// BasicMotions (UEA archive), compiled in: see `data/assets/README.md`.
const BASICMOTIONS_CSV: &str = include_str!("../assets/basicmotions.csv");
/// UEA/UCR sets where augmentation has room to help (attribution: `data/assets/README.md`), as
/// their `_TRAIN.ts` and `_TEST.ts` texts.
const UEA_SETS: &[(&str, &str, &str)] = &[
    (
        "arrowhead",
        include_str!("../assets/ArrowHead_TRAIN.ts"),
        include_str!("../assets/ArrowHead_TEST.ts"),
    ),
    (
        "japanesevowels",
        include_str!("../assets/JapaneseVowels_eq_TRAIN.ts"),
        include_str!("../assets/JapaneseVowels_eq_TEST.ts"),
    ),
];

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
    if let Some((set, train, test)) = UEA_SETS.iter().find(|(n, ..)| *n == name) {
        let train_path = format!("{set}_TRAIN.ts");
        let test_path = format!("{set}_TEST.ts");
        let ds = super::series::parse_ts_pair(
            std::path::Path::new(&train_path),
            train,
            Some((std::path::Path::new(&test_path), test)),
        )
        .expect("a bundled UEA set parses");
        return Some(ds);
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
