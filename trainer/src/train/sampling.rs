//! All randomness of a run comes from one seeded PCG stream, turned into tensors here: latents,
//! batches, interpolation weights, instance noise. burn's global device RNG is never used.

use burn::tensor::{Device, Tensor, TensorData};
use rand::RngExt;
use rand_distr::{Distribution, StandardNormal};
use rand_pcg::Pcg64Mcg;

pub fn normal_tensor(
    rng: &mut Pcg64Mcg,
    rows: usize,
    cols: usize,
    std: f64,
    device: &Device,
) -> Tensor<2> {
    let v: Vec<f32> = (0..rows * cols)
        .map(|_| {
            let s: f64 = StandardNormal.sample(rng);
            (std * s) as f32
        })
        .collect();
    Tensor::from_data(TensorData::new(v, [rows, cols]), device)
}

pub fn uniform_tensor(rng: &mut Pcg64Mcg, rows: usize, cols: usize, device: &Device) -> Tensor<2> {
    let v: Vec<f32> = (0..rows * cols)
        .map(|_| rng.random_range(0.0f32..1.0))
        .collect();
    Tensor::from_data(TensorData::new(v, [rows, cols]), device)
}

/// Minibatches drawn with replacement from fixed, normalised training points.
pub struct Batcher {
    points: Vec<f32>,
    dim: usize,
}

impl Batcher {
    pub fn new(points: Vec<f32>, dim: usize) -> Self {
        Self { points, dim }
    }

    pub fn batch(&self, rng: &mut Pcg64Mcg, size: usize, device: &Device) -> Tensor<2> {
        let n = self.points.len() / self.dim;
        let mut v = Vec::with_capacity(size * self.dim);
        for _ in 0..size {
            let i = rng.random_range(0..n);
            v.extend_from_slice(&self.points[i * self.dim..(i + 1) * self.dim]);
        }
        Tensor::from_data(TensorData::new(v, [size, self.dim]), device)
    }
}
