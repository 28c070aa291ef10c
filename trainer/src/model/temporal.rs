//! The conv generator: a projection of `[z, onehot(class)]` to `[C₀, T₀]`, then blocks of (nearest
//! ×2 upsample → Conv1d → BatchNorm → activation → noise), a Conv1d to the data's channels, and a
//! crop to its length. Written with ops burn-onnx exports and the int8 firmware runs:
//! - the projection is a "full" Conv1d (kernel T₀, padding T₀ − 1) over the input viewed as one
//!   time step: exactly a dense layer to `[C₀, T₀]` (as DCGAN's transposed-conv projection), but
//!   without the reshape `[N, C₀·T₀] → [N, C₀, T₀]` that burn-onnx cannot export under a dynamic
//!   batch (neither C₀ nor T₀ is a static axis of its source);
//! - upsampling is `interpolate` (ONNX `Resize`, nearest);
//! - the crop is a `select` of the first T steps (ONNX `Gather`: a `Slice` of a tensor with a
//!   dynamic batch cannot be exported).

use super::batchnorm::GenBatchNorm;
use super::discriminator::ConvLayer;
use super::{init_conv, Act};
use crate::config::ModelConfig;
use anyhow::{bail, Result};
use burn::module::{Module, Param};
use burn::tensor::module::{conv1d, interpolate};
use burn::tensor::ops::{ConvOptions, InterpolateMode, InterpolateOptions};
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand_distr::{Distribution, StandardNormal};
use rand_pcg::Pcg64Mcg;

#[derive(Module, Debug)]
pub struct ConvHead {
    /// Weight `[C₀, latent + classes, T₀]`.
    pub project: ConvLayer,
    pub blocks: Vec<ConvLayer>,
    /// With `model.g_batchnorm`: after the projection, then after each block's convolution.
    pub norms: Vec<GenBatchNorm>,
    /// Per-channel scale of the injected noise, one per block (starts at 0).
    pub noise_scales: Vec<Param<Tensor<1>>>,
    pub out: ConvLayer,
    /// `[C₀, T₀, C, T]`: the projection's view and the data's shape.
    pub dims: Vec<usize>,
}

/// `[C₀, T₀]` for data of `[channels, length]`: T₀ · 2^blocks is the first length ≥ T. Refuses
/// shapes the blocks cannot reach sensibly, naming the keys.
pub fn start_shape(cfg: &ModelConfig, shape: [usize; 2]) -> Result<[usize; 2]> {
    let [_, t] = shape;
    let blocks = cfg.g_conv_blocks;
    let factor = 1usize << blocks;
    if factor > t {
        bail!(
            "`model.g_conv_blocks` = {blocks} doubles the length {blocks} times ({factor} steps), past the series' {t} steps; use at most {}",
            t.ilog2()
        );
    }
    let t0 = t.div_ceil(factor);
    let shortest = if blocks > 0 { 2 * t0 } else { t0 };
    if cfg.g_conv_kernel > shortest {
        bail!(
            "`model.g_conv_kernel` = {} is longer than the shortest series a convolution sees ({shortest} steps); lower it or `model.g_conv_blocks`",
            cfg.g_conv_kernel
        );
    }
    Ok([cfg.g_conv_channels, t0])
}

impl ConvHead {
    /// `input`: latent + classes; `start`: `[C₀, T₀]` from `start_shape`.
    pub fn new(
        cfg: &ModelConfig,
        input: usize,
        start: [usize; 2],
        shape: [usize; 2],
        rng: &mut Pcg64Mcg,
        dev: &Device,
    ) -> Self {
        let ([ch, t0], k) = (start, cfg.g_conv_kernel);
        // Only one tap of the projection meets the input: its fan-in is the input's width.
        let project = init_conv([ch, input, t0], input, rng, dev);
        let blocks = (0..cfg.g_conv_blocks)
            .map(|_| init_conv([ch, ch, k], ch * k, rng, dev))
            .collect();
        let out = init_conv([shape[0], ch, k], ch * k, rng, dev);
        let per_block = |on: bool, n: usize| if on { n } else { 0 };
        ConvHead {
            project,
            blocks,
            norms: (0..per_block(cfg.g_batchnorm, cfg.g_conv_blocks + 1))
                .map(|_| GenBatchNorm::new(ch, dev))
                .collect(),
            noise_scales: (0..per_block(cfg.g_noise, cfg.g_conv_blocks))
                .map(|_| Param::from_tensor(Tensor::zeros([ch], dev)))
                .collect(),
            out,
            dims: vec![ch, t0, shape[0], shape[1]],
        }
    }

    /// `z`: `[B, latent + classes]` rows; returns flat `[B, C·T]` rows.
    pub fn forward(
        &self,
        z: Tensor<2>,
        act: &Act,
        train: bool,
        update_stats: bool,
        mut noise: Option<&mut Pcg64Mcg>,
    ) -> Tensor<2> {
        let [c0, t0, c, t] = [self.dims[0], self.dims[1], self.dims[2], self.dims[3]];
        let [b, input] = z.dims();
        // `-1` for the batch: burn-onnx then keeps it symbolic.
        let z: Tensor<3> = z.reshape([-1, input as i32, 1]);
        let opts = ConvOptions::new([1], [t0 - 1], [1], 1);
        let w = &self.project;
        let mut x = conv1d(z, w.weight.val(), Some(w.bias.val()), opts);
        if let Some(bn) = self.norms.first() {
            x = bn.forward(x, train, update_stats);
        }
        x = act.forward(x);
        for (i, conv) in self.blocks.iter().enumerate() {
            let len = x.dims()[2];
            let up = interpolate(
                x.reshape([-1, c0 as i32, len as i32, 1]),
                InterpolateOptions::new(InterpolateMode::Nearest).with_output_size([2 * len, 1]),
            );
            x = same_conv(up.reshape([-1, c0 as i32, 2 * len as i32]), conv);
            if let Some(bn) = self.norms.get(i + 1) {
                x = bn.forward(x, train, update_stats);
            }
            x = act.forward(x);
            if let (Some(scale), Some(rng)) = (self.noise_scales.get(i), noise.as_deref_mut()) {
                let len = x.dims()[2];
                let n: Vec<f32> = (0..b * c0 * len)
                    .map(|_| StandardNormal.sample(rng))
                    .collect();
                let n = Tensor::<3>::from_data(TensorData::new(n, [b, c0, len]), &x.device());
                x = x + n.mul(scale.val().unsqueeze_dim::<2>(1).unsqueeze());
            }
        }
        let y = same_conv(x, &self.out);
        let y = if y.dims()[2] == t {
            y
        } else {
            let keep: Vec<i64> = (0..t as i64).collect();
            let idx = Tensor::<1, Int>::from_data(TensorData::new(keep, [t]), &y.device());
            y.select(2, idx)
        };
        y.reshape([-1, (c * t) as i32])
    }
}

/// Stride 1, padding k/2 each side: the length is kept.
fn same_conv(x: Tensor<3>, conv: &ConvLayer) -> Tensor<3> {
    let k = conv.weight.dims()[2];
    let opts = ConvOptions::new([1], [k / 2], [1], 1);
    conv1d(x, conv.weight.val(), Some(conv.bias.val()), opts)
}
