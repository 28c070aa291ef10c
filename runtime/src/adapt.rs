//! The host simulation of on-device adaptation: the firmware's own learner (`keel_firmware::learn`)
//! and augmenter, run here on the same int8 windows a device would hold, so its accuracies are the
//! device's (integer features, f32 arithmetic in a fixed order).
//!
//! For each k and draw: k labelled windows per class drawn from a dataset's test split (the
//! user's own recordings) and the rest of that split as the windows to classify (disjoint), as an
//! adaptation set (`keel_firmware::learn::set`, what a board is given); the head trained twice by
//! `keel_firmware::learn::adapt` — on the k real windows only, and on them plus `generated`
//! windows per class from the `.kq8` generator.

use crate::quantize::HostArena;
use anyhow::{anyhow, bail, Context, Result};
use keel_firmware::learn::{adapt, set, AdaptSet, Learner};
use keel_firmware::{Augmenter, Kernel, Model};
use keel_stats::{paired, MeanStd, Paired};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;
use serde::Serialize;

/// The most classes the simulation's learner holds.
pub const MAX_CLASSES: usize = 16;

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
    /// The weight of a generated window in its class mean, chosen per draw by leave-one-out
    /// on the k real windows (`Learner::choose_weight`).
    pub weights: Vec<f32>,
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
    }
    let mut buffers = HostArena::for_model(model);
    let mut arena = buffers.arena();
    let mut aug = Augmenter::new(model, &mut arena, Kernel::Scalar, seed).map_err(err)?;
    let quantized = quantize(&aug, data, len)?;
    let mut scratch = vec![0i8; len];
    let features = aug.features(seed, &mut scratch).map_err(err)?;
    let mut learner = Box::new(Learner::<MAX_CLASSES>::new(features, classes).map_err(err)?);
    let mut rows = Vec::new();
    for &k in ks {
        let mut acc = [Vec::new(), Vec::new()];
        let mut weights = Vec::new();
        let mut tested = 0;
        for d in 0..draws {
            let set = draw_set(data, &quantized, classes, len, k, d, generated, seed)?;
            let set = AdaptSet::parse(&set).map_err(err)?;
            tested = set.tests;
            for (arm, with) in [0, generated].into_iter().enumerate() {
                let right = adapt(
                    &mut learner,
                    &mut aug,
                    &set,
                    with as u32,
                    first_index(d, generated),
                    &mut scratch,
                    &mut |_| {},
                )
                .map_err(err)?;
                acc[arm].push(right as f64 / set.tests as f64);
            }
            weights.push(learner.weight());
        }
        rows.push(Row {
            k,
            tested,
            real_only: MeanStd::of(&acc[0]),
            with_generated: MeanStd::of(&acc[1]),
            gain: paired(&acc[1], &acc[0]),
            per_draw: acc,
            weights,
        });
    }
    Ok(Adaptation {
        seed,
        draws,
        generated_per_class: generated,
        rows,
    })
}

/// The device's view of every window: int8 on the generator's scale.
fn quantize(aug: &Augmenter, data: &Windows, len: usize) -> Result<Vec<i8>> {
    let mut q = vec![0i8; data.points.len()];
    for (real, out) in data.points.chunks_exact(len).zip(q.chunks_exact_mut(len)) {
        aug.quantize(real, out).map_err(err)?;
    }
    Ok(q)
}

/// The adaptation set of draw 1 (index 0) at `k`, as `simulate` runs it.
pub fn export_set(
    model: &Model,
    data: &Windows,
    k: usize,
    generated: usize,
    seed: u64,
) -> Result<Vec<u8>> {
    let classes = model.header.classes as usize;
    let len = model.header.outputs();
    let mut buffers = HostArena::for_model(model);
    let mut arena = buffers.arena();
    let aug = Augmenter::new(model, &mut arena, Kernel::Scalar, seed).map_err(err)?;
    let quantized = quantize(&aug, data, len)?;
    draw_set(data, &quantized, classes, len, k, 0, generated, seed)
}

/// The first generated index of draw `d`: each draw adds its own windows.
pub fn first_index(d: usize, generated: usize) -> u32 {
    (d * generated) as u32
}

/// Draw `d` of k labelled windows per class from `data` (quantized), the rest as tests, as the
/// adaptation set a board would be given.
#[allow(clippy::too_many_arguments)]
fn draw_set(
    data: &Windows,
    quantized: &[i8],
    classes: usize,
    len: usize,
    k: usize,
    d: usize,
    generated: usize,
    seed: u64,
) -> Result<Vec<u8>> {
    let draw_seed = seed.wrapping_add(1000 * d as u64 + k as u64);
    let (labelled, test) = pick(data.labels, classes, k, draw_seed);
    let window = |i: usize| (data.labels[i] as u16, &quantized[i * len..][..len]);
    let labelled: Vec<(u16, &[i8])> = labelled.into_iter().map(window).collect();
    let test: Vec<(u16, &[i8])> = test.into_iter().map(window).collect();
    let mut out = Vec::new();
    set::write(
        &mut out,
        classes as u16,
        len,
        generated as u32,
        seed,
        &labelled,
        &test,
    )
    .map_err(err)?;
    Ok(out)
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

/// The names under `key` (`classes`, `columns`) in a `.kq8`'s provenance; empty when absent.
pub fn provenance_names(model: &Model, key: &str) -> Vec<String> {
    let meta: serde_json::Value = serde_json::from_slice(model.meta()).unwrap_or_default();
    meta[key]
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
