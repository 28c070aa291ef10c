//! Drawing samples from a trained generator, in the data's own units.

use crate::data::Normalizer;
use crate::model::generator::GenMode;
use crate::model::Generator;
use crate::train::{normal_tensor, one_hot};
use burn::tensor::{Device, Tensor};
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;

/// Past a run's seed: the seed of the fixed latents its evaluations draw (mode metrics, the Fréchet
/// measure), so every evaluation of a run looks at the same latents.
pub const EVAL_SEED_OFFSET: u64 = 10_000;

/// `n` samples, row-major, de-normalised; a conditional generator cycles through its classes
/// (sample i has class i mod classes). `g` must be an inference copy (inner backend).
pub fn sample(g: &Generator, norm: &Normalizer, n: usize, seed: u64, device: &Device) -> Vec<f32> {
    let labels: Vec<usize> = (0..n).map(|i| i % g.classes.max(1)).collect();
    sample_classes(g, norm, &labels, seed, device)
}

/// One sample per entry of `labels` (ignored by an unconditional generator).
pub fn sample_classes(
    g: &Generator,
    norm: &Normalizer,
    labels: &[usize],
    seed: u64,
    device: &Device,
) -> Vec<f32> {
    norm.inverse(&generate(g, labels, seed, device))
}

/// One sample per entry of `labels`, in the normalised units the generator was trained in.
pub fn generate(g: &Generator, labels: &[usize], seed: u64, device: &Device) -> Vec<f32> {
    const CHUNK: usize = 4096;
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    let mut out = Vec::with_capacity(labels.len() * g.output_dim);
    for chunk in labels.chunks(CHUNK) {
        let b = chunk.len();
        let z = normal_tensor(&mut rng, b, g.latent(), 1.0, device);
        let z = if g.classes > 0 {
            Tensor::cat(vec![z, one_hot(chunk, g.classes, device)], 1)
        } else {
            z
        };
        let x = g.forward(z, GenMode::inference());
        let v = x
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .expect("f32 data");
        out.extend(v);
    }
    out
}
