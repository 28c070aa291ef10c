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

/// One-hot rows `[labels.len(), classes]`.
pub fn one_hot(labels: &[usize], classes: usize, device: &Device) -> Tensor<2> {
    let mut v = vec![0.0f32; labels.len() * classes];
    for (r, &k) in labels.iter().enumerate() {
        v[r * classes + k] = 1.0;
    }
    Tensor::from_data(TensorData::new(v, [labels.len(), classes]), device)
}

/// Minibatches drawn with replacement from fixed, normalised training points, with their classes.
pub struct Batcher {
    points: Vec<f32>,
    labels: Vec<usize>,
    classes: usize,
    dim: usize,
}

/// A batch of rows and, for labelled data, their one-hot classes.
pub struct Batch {
    pub x: Tensor<2>,
    pub y: Option<Tensor<2>>,
}

impl Batcher {
    /// `labels` is empty (unlabelled) or holds one class index per row.
    pub fn new(points: Vec<f32>, dim: usize, labels: Vec<usize>, classes: usize) -> Self {
        Self {
            points,
            labels,
            classes,
            dim,
        }
    }

    pub fn batch(&self, rng: &mut Pcg64Mcg, size: usize, device: &Device) -> Batch {
        let n = self.points.len() / self.dim;
        let mut v = Vec::with_capacity(size * self.dim);
        let mut ys = Vec::with_capacity(size);
        for _ in 0..size {
            let i = rng.random_range(0..n);
            v.extend_from_slice(&self.points[i * self.dim..(i + 1) * self.dim]);
            if let Some(&k) = self.labels.get(i) {
                ys.push(k);
            }
        }
        Batch {
            x: Tensor::from_data(TensorData::new(v, [size, self.dim]), device),
            y: (self.classes > 0).then(|| one_hot(&ys, self.classes, device)),
        }
    }

    /// Classes for a batch of fakes, in the training data's proportions (`None` when unlabelled).
    pub fn classes_like_data(
        &self,
        rng: &mut Pcg64Mcg,
        size: usize,
        device: &Device,
    ) -> Option<Tensor<2>> {
        if self.classes == 0 {
            return None;
        }
        let ys: Vec<usize> = (0..size)
            .map(|_| self.labels[rng.random_range(0..self.labels.len())])
            .collect();
        Some(one_hot(&ys, self.classes, device))
    }
}
