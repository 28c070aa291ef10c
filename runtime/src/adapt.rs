//! The host simulation of on-device adaptation: the firmware's own learner (`keel_firmware::learn`)
//! and augmenter, run here on the same int8 windows a device would hold, so its accuracies are the
//! device's (integer features, f32 arithmetic in a fixed order).
//!
//! For each k and draw: k labelled windows per class drawn from a dataset's test split (the
//! user's own recordings) and the rest of that split as the windows to classify (disjoint); the
//! head trained twice — on the k real windows only, and on them plus `generated` windows per class
//! from the `.kq8` generator.

use anyhow::{anyhow, bail, Context, Result};
use keel_firmware::learn::{Features, Learner, Store};
use keel_firmware::{Arena, Augmenter, Kernel, Model};
use keel_stats::{paired, MeanStd, Paired};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;
use serde::Serialize;

/// The most classes the simulation's learner holds.
pub const MAX_CLASSES: usize = 16;
/// The most labelled windows the simulated device stores.
pub const STORE: usize = 128;
/// The longest window the simulated store holds.
const MAX_WINDOW: usize = 1024;

/// Labelled windows in real units, channel-major rows.
pub struct Windows<'a> {
    pub points: &'a [f32],
    pub labels: &'a [usize],
}

#[derive(Debug, Clone, Serialize)]
pub struct Adaptation {
    pub seed: u64,
    pub draws: usize,
    pub generated_per_class: usize,
    pub rows: Vec<Row>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub k: usize,
    /// Windows classified per draw.
    pub tested: usize,
    pub real_only: MeanStd,
    pub with_generated: MeanStd,
    /// With generated − real only, over the same draws.
    pub gain: Paired,
    pub per_draw: [Vec<f64>; 2],
}

/// Runs the simulation for every k (`draws` each).
pub fn simulate(
    model: &Model,
    data: &Windows,
    ks: &[usize],
    draws: usize,
    generated: usize,
    seed: u64,
) -> Result<Adaptation> {
    let h = &model.header;
    let (classes, len) = (h.classes as usize, h.outputs());
    if !(2..=MAX_CLASSES).contains(&classes) {
        bail!(
            "the model has {classes} classes: adaptation needs a conditional model of 2 to {MAX_CLASSES}"
        );
    }
    if data.points.len() != data.labels.len() * len {
        bail!(
            "the windows hold {} values each; the model makes {len} ({} × {})",
            data.points.len() / data.labels.len().max(1),
            h.channels,
            h.length
        );
    }
    if let Some(&l) = data.labels.iter().find(|&&l| l >= classes) {
        bail!("a window has class {l}; the model knows {classes}");
    }
    for &k in ks {
        for c in 0..classes {
            let n = data.labels.iter().filter(|&&l| l == c).count();
            if n <= k {
                bail!("--k {k}: class {c} has {n} windows; k must leave at least one to classify");
            }
        }
        if k * classes > STORE {
            bail!(
                "--k {k}: {} windows exceed the store of {STORE}",
                k * classes
            );
        }
    }
    // The device's view of every window: int8 on the generator's scale.
    let mut buffers = (
        vec![0i8; model.max_width],
        vec![0i8; model.max_width],
        vec![0u32; model.max_in.div_ceil(2)],
    );
    let mut arena = Arena {
        a: &mut buffers.0,
        b: &mut buffers.1,
        x16: &mut buffers.2,
    };
    let mut aug = Augmenter::new(model, &mut arena, Kernel::Scalar, seed).map_err(err)?;
    let mut quantized = vec![0i8; data.points.len()];
    for (real, q) in data
        .points
        .chunks_exact(len)
        .zip(quantized.chunks_exact_mut(len))
    {
        aug.quantize(real, q).map_err(err)?;
    }
    let mut scratch = vec![0i8; len];
    let features = aug.features(seed, &mut scratch).map_err(err)?;
    let mut rows = Vec::new();
    for &k in ks {
        let mut acc = [Vec::new(), Vec::new()];
        let mut tested = 0;
        for d in 0..draws {
            let draw_seed = seed.wrapping_add(1000 * d as u64 + k as u64);
            let (labelled, test) = pick(data.labels, classes, k, draw_seed);
            tested = test.len();
            let mut store = Box::new(Store::<MAX_WINDOW, STORE>::new(len).map_err(err)?);
            for &i in &labelled {
                store
                    .push(data.labels[i] as u16, &quantized[i * len..][..len])
                    .map_err(err)?;
            }
            for (arm, with) in [0, generated].into_iter().enumerate() {
                let mut learner = learner(&features, classes)?;
                for (class, w) in store.iter() {
                    learner.add(class, w).map_err(err)?;
                }
                for class in 0..classes as u16 {
                    for i in 0..with {
                        // Draw d's own generated windows: indices d · generated + i.
                        let index = (d * generated + i) as u32;
                        aug.window_i8(class, index, &mut scratch).map_err(err)?;
                        learner.add(class, &scratch).map_err(err)?;
                    }
                }
                learner.train().map_err(err)?;
                let mut right = 0;
                for &i in &test {
                    let p = learner.predict(&quantized[i * len..][..len]).map_err(err)?;
                    right += usize::from(p as usize == data.labels[i]);
                }
                acc[arm].push(right as f64 / test.len() as f64);
            }
        }
        rows.push(Row {
            k,
            tested,
            real_only: MeanStd::of(&acc[0]),
            with_generated: MeanStd::of(&acc[1]),
            gain: paired(&acc[1], &acc[0]),
            per_draw: acc,
        });
    }
    Ok(Adaptation {
        seed,
        draws,
        generated_per_class: generated,
        rows,
    })
}

fn learner(features: &Features, classes: usize) -> Result<Box<Learner<MAX_CLASSES>>> {
    Ok(Box::new(
        Learner::new(features.clone(), classes).map_err(err)?,
    ))
}

/// k indices per class (seeded), and the rest.
fn pick(labels: &[usize], classes: usize, k: usize, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    let (mut chosen, mut rest) = (Vec::new(), Vec::new());
    for c in 0..classes {
        let mut idx: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == c).collect();
        idx.shuffle(&mut rng);
        chosen.extend_from_slice(&idx[..k]);
        rest.extend_from_slice(&idx[k..]);
    }
    rest.sort_unstable();
    (chosen, rest)
}

fn err(e: keel_firmware::Error) -> anyhow::Error {
    anyhow!("{e}")
}

/// The model's class names (from its provenance), to match a dataset's.
pub fn class_names(model: &Model) -> Vec<String> {
    let meta: serde_json::Value = serde_json::from_slice(model.meta()).unwrap_or_default();
    meta["classes"]
        .as_array()
        .map(|v| {
            v.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Maps a dataset's class indices onto the model's, by name; refuses a class the model lacks.
pub fn remap_labels(model_names: &[String], data_names: &[String]) -> Result<Vec<usize>> {
    data_names
        .iter()
        .map(|n| {
            model_names.iter().position(|m| m == n).with_context(|| {
                format!(
                    "class `{n}` of the data is not one the model generates ({})",
                    model_names.join(", ")
                )
            })
        })
        .collect()
}
