//! The fixed reference networks of the time-series evaluation: a small 1-D CNN trained the same way
//! every time (seeded init and batches, fixed steps, Adam), as a classifier (classes, or real vs
//! synthetic) or, with causal convolutions, as a next-step predictor.

use crate::train::one_hot;
use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::activation::{log_softmax, relu};
use burn::tensor::module::conv1d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor, TensorData};
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;

const HIDDEN: usize = 32;
const KERNELS: [usize; 2] = [7, 5];

/// How every reference network is trained.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Fit {
    pub steps: usize,
    pub batch: usize,
    pub lr: f64,
    pub seed: u64,
}

impl Default for Fit {
    fn default() -> Self {
        Self {
            steps: 400,
            batch: 32,
            lr: 2e-3,
            seed: 0,
        }
    }
}

#[derive(Module, Debug)]
pub struct Cnn {
    weights: Vec<Param<Tensor<3>>>,
    biases: Vec<Param<Tensor<1>>>,
    /// Classes (or 1 output per step for the predictor).
    head: Linear,
    causal: bool,
}

impl Cnn {
    fn new(
        channels: usize,
        outputs: usize,
        causal: bool,
        rng: &mut Pcg64Mcg,
        device: &Device,
    ) -> Self {
        let mut weights = Vec::new();
        let mut biases = Vec::new();
        let mut c_in = channels;
        for k in KERNELS {
            let bound = 1.0 / ((c_in * k) as f32).sqrt();
            let w: Vec<f32> = (0..HIDDEN * c_in * k)
                .map(|_| rng.random_range(-bound..bound))
                .collect();
            let b: Vec<f32> = (0..HIDDEN)
                .map(|_| rng.random_range(-bound..bound))
                .collect();
            weights.push(Param::from_tensor(Tensor::from_data(
                TensorData::new(w, [HIDDEN, c_in, k]),
                device,
            )));
            biases.push(Param::from_tensor(Tensor::from_data(
                TensorData::new(b, [HIDDEN]),
                device,
            )));
            c_in = HIDDEN;
        }
        Self {
            weights,
            biases,
            head: crate::model::init_linear(HIDDEN, outputs, rng, device),
            causal,
        }
    }

    /// Features `[B, HIDDEN, T]`; causal convolutions see only steps ≤ t.
    fn features(&self, x: Tensor<3>) -> Tensor<3> {
        let mut h = x;
        for ((w, b), k) in self.weights.iter().zip(&self.biases).zip(KERNELS) {
            let pad = if self.causal {
                (k - 1, 0)
            } else {
                (k / 2, k / 2)
            };
            let opts = ConvOptions::new_with_padding([1], [pad], [1], 1);
            h = relu(conv1d(h, w.val(), Some(b.val()), opts));
        }
        h
    }

    /// Class logits `[B, K]` (global average over time).
    pub fn logits(&self, x: Tensor<3>) -> Tensor<2> {
        let h = self.features(x).mean_dim(2).squeeze_dim::<2>(2);
        self.head.forward(h)
    }

    /// One output per step `[B, T]` (the predictor).
    pub fn per_step(&self, x: Tensor<3>) -> Tensor<2> {
        let h = self.features(x); // [B, H, T]
        let [b, hd, t] = h.dims();
        let h = h.swap_dims(1, 2).reshape([b * t, hd]);
        self.head.forward(h).reshape([b, t])
    }
}

/// Rows of a `[channels, length]` series set as a `[n, C, T]` tensor, only the listed channels.
fn tensor(
    rows: &[&[f32]],
    shape: [usize; 2],
    channels: &[usize],
    steps: std::ops::Range<usize>,
    device: &Device,
) -> Tensor<3> {
    let t = shape[1];
    let mut v = Vec::with_capacity(rows.len() * channels.len() * steps.len());
    for r in rows {
        for &c in channels {
            v.extend_from_slice(&r[c * t + steps.start..c * t + steps.end]);
        }
    }
    Tensor::from_data(
        TensorData::new(v, [rows.len(), channels.len(), steps.len()]),
        device,
    )
}

fn optimizer() -> ModuleOptimizer {
    AdamConfig::new()
        .with_beta_1(0.9)
        .with_beta_2(0.999)
        .with_epsilon(1e-8)
        .init()
}

/// A classifier of `classes` trained on normalised series `x` (rows of C·T) with labels `y`.
pub fn train_classifier(
    x: &[f32],
    y: &[usize],
    shape: [usize; 2],
    classes: usize,
    fit: Fit,
) -> Cnn {
    let device = Device::flex().autodiff();
    let mut rng = Pcg64Mcg::seed_from_u64(fit.seed);
    let mut model = Cnn::new(shape[0], classes, false, &mut rng, &device);
    let mut opt = optimizer();
    let rows: Vec<&[f32]> = x.chunks_exact(shape[0] * shape[1]).collect();
    let all: Vec<usize> = (0..shape[0]).collect();
    for _ in 0..fit.steps {
        let idx: Vec<usize> = (0..fit.batch)
            .map(|_| rng.random_range(0..rows.len()))
            .collect();
        let xb: Vec<&[f32]> = idx.iter().map(|&i| rows[i]).collect();
        let yb: Vec<usize> = idx.iter().map(|&i| y[i]).collect();
        let logits = model.logits(tensor(&xb, shape, &all, 0..shape[1], &device));
        let loss = log_softmax(logits, 1)
            .mul(one_hot(&yb, classes, &device))
            .sum_dim(1)
            .mean()
            .neg();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = opt.step(fit.lr, model, grads);
    }
    model.valid()
}

/// Fraction of rows whose arg-max class is the label.
pub fn accuracy(model: &Cnn, x: &[f32], y: &[usize], shape: [usize; 2]) -> f64 {
    let right = class_scores(model, x, shape)
        .iter()
        .zip(y)
        .filter(|(s, l)| argmax(s) == **l)
        .count();
    right as f64 / y.len().max(1) as f64
}

/// The class logits of each row of `x`.
pub fn class_scores(model: &Cnn, x: &[f32], shape: [usize; 2]) -> Vec<Vec<f64>> {
    let device = Device::flex();
    let rows: Vec<&[f32]> = x.chunks_exact(shape[0] * shape[1]).collect();
    let all: Vec<usize> = (0..shape[0]).collect();
    let mut out = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(512) {
        let logits = model.logits(tensor(chunk, shape, &all, 0..shape[1], &device));
        let classes = logits.dims()[1];
        let v = logits
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .expect("f32 data");
        out.extend(
            v.chunks_exact(classes)
                .map(|r| r.iter().map(|&s| s as f64).collect()),
        );
    }
    out
}

/// The first index of the largest score (0 for none).
pub fn argmax(scores: &[f64]) -> usize {
    let mut best = 0;
    for (i, s) in scores.iter().enumerate() {
        if *s > scores[best] {
            best = i;
        }
    }
    best
}

/// The channels that predict and the channel predicted (TimeGAN: the last feature from the others;
/// a univariate series predicts itself).
fn predictor_channels(channels: usize) -> (Vec<usize>, usize) {
    if channels == 1 {
        (vec![0], 0)
    } else {
        ((0..channels - 1).collect(), channels - 1)
    }
}

/// A next-step predictor (L1 loss, as TimeGAN trains it) on normalised series `x`.
pub fn train_predictor(x: &[f32], shape: [usize; 2], fit: Fit) -> Cnn {
    let device = Device::flex().autodiff();
    let mut rng = Pcg64Mcg::seed_from_u64(fit.seed);
    let (inputs, target) = predictor_channels(shape[0]);
    let mut model = Cnn::new(inputs.len(), 1, true, &mut rng, &device);
    let mut opt = optimizer();
    let rows: Vec<&[f32]> = x.chunks_exact(shape[0] * shape[1]).collect();
    let t = shape[1];
    for _ in 0..fit.steps {
        let xb: Vec<&[f32]> = (0..fit.batch)
            .map(|_| rows[rng.random_range(0..rows.len())])
            .collect();
        let input = tensor(&xb, shape, &inputs, 0..t - 1, &device);
        let want = tensor(&xb, shape, &[target], 1..t, &device).squeeze_dim::<2>(1);
        let loss = model.per_step(input).sub(want).abs().mean();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = opt.step(fit.lr, model, grads);
    }
    model.valid()
}

/// Mean absolute next-step error of `model` on normalised series `x`.
pub fn predictor_mae(model: &Cnn, x: &[f32], shape: [usize; 2]) -> f64 {
    let device = Device::flex();
    let (inputs, target) = predictor_channels(shape[0]);
    let rows: Vec<&[f32]> = x.chunks_exact(shape[0] * shape[1]).collect();
    let t = shape[1];
    let mut sum = 0.0;
    for chunk in rows.chunks(512) {
        let input = tensor(chunk, shape, &inputs, 0..t - 1, &device);
        let want = tensor(chunk, shape, &[target], 1..t, &device).squeeze_dim::<2>(1);
        sum += model
            .per_step(input)
            .sub(want)
            .abs()
            .sum()
            .into_scalar::<f64>();
    }
    sum / (rows.len() * (t - 1)).max(1) as f64
}
