//! Drawing samples from a trained generator, in the data's own units.

use crate::data::Normalizer;
use crate::model::generator::GenMode;
use crate::model::Generator;
use crate::train::normal_tensor;
use burn::tensor::Device;
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;

/// `n` samples, row-major, de-normalised. `g` must be an inference copy (inner backend).
pub fn sample(g: &Generator, norm: &Normalizer, n: usize, seed: u64, device: &Device) -> Vec<f32> {
    const CHUNK: usize = 4096;
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    let mut out = Vec::with_capacity(n * g.output_dim);
    let mut left = n;
    while left > 0 {
        let b = left.min(CHUNK);
        let z = normal_tensor(&mut rng, b, g.input_dim, 1.0, device);
        let x = g.forward(z, GenMode::inference());
        let v = x
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .expect("f32 data");
        out.extend(norm.inverse(&v));
        left -= b;
    }
    out
}
