//! Generator: [z, onehot(class)] → [Linear → (BatchNorm) → act → (noise)]×depth → Linear, and for
//! `model.g_kind = "conv"` the temporal head of `temporal` after it (then depth is 0: the Linear
//! projects z to `[C₀, T₀]`).
//! A conditional generator takes its class as a one-hot row concatenated to z: the exported graph
//! then needs only Concat + MatMul, which every runtime and the int8 firmware handle.

use super::ids::{number_params, numbered_state};
use super::temporal::{start_shape, ConvHead};
use super::{init_linear, Act, GenBatchNorm};
use crate::config::{GenKind, ModelConfig};
use anyhow::{bail, Result};
use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::{Device, Tensor, TensorData};
use rand_distr::{Distribution, StandardNormal};
use rand_pcg::Pcg64Mcg;

#[derive(Module, Debug)]
pub struct Generator {
    pub hidden: Vec<Linear>,
    pub norms: Vec<GenBatchNorm>,
    /// Per-unit scale of the injected noise, one vector per hidden layer (starts at 0).
    pub noise_scales: Vec<Param<Tensor<1>>>,
    /// The MLP's output layer (`None` for the conv generator, whose head ends in a Conv1d).
    pub out: Option<Linear>,
    /// Latent size plus number of classes.
    pub input_dim: usize,
    /// Number of classes (0: unconditional).
    pub classes: usize,
    pub output_dim: usize,
    #[module(skip)]
    pub act: Act,
    /// The conv generator's temporal head (`None`: an MLP).
    pub conv: Option<ConvHead>,
}

/// How a forward pass treats the stochastic and batch-dependent layers.
pub struct GenMode<'a> {
    /// BatchNorm uses batch statistics.
    pub train: bool,
    /// Move BatchNorm running statistics (only the generator step does).
    pub update_stats: bool,
    /// Source of injected noise; `None` injects nothing (deterministic sampling and export).
    pub noise: Option<&'a mut Pcg64Mcg>,
}

impl GenMode<'_> {
    pub fn inference() -> GenMode<'static> {
        GenMode {
            train: false,
            update_stats: false,
            noise: None,
        }
    }
}

impl Generator {
    /// `shape`: `[channels, length]` of series data (the conv generator needs it).
    pub fn new(
        cfg: &ModelConfig,
        classes: usize,
        output_dim: usize,
        shape: Option<[usize; 2]>,
        rng: &mut Pcg64Mcg,
        device: &Device,
    ) -> Result<Self> {
        let conv_shape = match (cfg.g_kind, shape) {
            (GenKind::Mlp, _) => None,
            (GenKind::Conv, Some(shape)) => Some((start_shape(cfg, shape)?, shape)),
            (GenKind::Conv, None) => {
                bail!("`model.g_kind = \"conv\"` generates series; this dataset is a table (use \"mlp\")")
            }
        };
        let depth = if conv_shape.is_some() { 0 } else { cfg.g_depth };
        let mut d = cfg.latent + classes;
        let mut hidden = Vec::new();
        let mut norms = Vec::new();
        let mut noise_scales = Vec::new();
        for _ in 0..depth {
            hidden.push(init_linear(d, cfg.g_width, rng, device));
            if cfg.g_batchnorm {
                norms.push(GenBatchNorm::new(cfg.g_width, device));
            }
            if cfg.g_noise {
                noise_scales.push(Param::from_tensor(Tensor::zeros([cfg.g_width], device)));
            }
            d = cfg.g_width;
        }
        let (out, conv) = match conv_shape {
            None => (Some(init_linear(d, output_dim, rng, device)), None),
            Some((start, shape)) => (None, Some(ConvHead::new(cfg, d, start, shape, rng, device))),
        };
        let g = Self {
            hidden,
            norms,
            noise_scales,
            out,
            input_dim: cfg.latent + classes,
            classes,
            output_dim,
            act: Act::new(cfg.g_activation, cfg.leaky_slope),
            conv,
        };
        Ok(g.numbered())
    }

    /// Deterministic parameter ids (see `ids`).
    fn numbered(self) -> Self {
        let base = super::GENERATOR_IDS;
        let mut g = number_params(self, base);
        for (i, bn) in g.norms.iter_mut().enumerate() {
            bn.running_mean = numbered_state(&bn.running_mean, base, 2 * i);
            bn.running_var = numbered_state(&bn.running_var, base, 2 * i + 1);
        }
        let taken = 2 * g.norms.len();
        if let Some(head) = g.conv.as_mut() {
            for (i, bn) in head.norms.iter_mut().enumerate() {
                bn.running_mean = numbered_state(&bn.running_mean, base, taken + 2 * i);
                bn.running_var = numbered_state(&bn.running_var, base, taken + 2 * i + 1);
            }
        }
        g
    }

    pub fn device(&self) -> Device {
        match (&self.out, &self.conv) {
            (Some(out), _) => out.weight.val().device(),
            (None, Some(head)) => head.project.weight.val().device(),
            (None, None) => unreachable!("a generator is an MLP or a conv generator"),
        }
    }

    /// Size of z alone.
    pub fn latent(&self) -> usize {
        self.input_dim - self.classes
    }

    /// `z` `[N, latent]` with `class` `[N, classes]` one-hot rows.
    pub fn forward_conditional(
        &self,
        z: Tensor<2>,
        class: Tensor<2>,
        mode: GenMode<'_>,
    ) -> Tensor<2> {
        self.forward(Tensor::cat(vec![z, class], 1), mode)
    }

    /// `z` `[N, input_dim]`: the latent, already joined with any one-hot class.
    pub fn forward(&self, z: Tensor<2>, mode: GenMode<'_>) -> Tensor<2> {
        let GenMode {
            train,
            update_stats,
            mut noise,
        } = mode;
        let mut h = z;
        for (i, layer) in self.hidden.iter().enumerate() {
            h = layer.forward(h);
            if let Some(bn) = self.norms.get(i) {
                h = bn.forward(h, train, update_stats);
            }
            h = self.act.forward(h);
            if let (Some(scale), Some(rng)) = (self.noise_scales.get(i), noise.as_deref_mut()) {
                let [b, w] = h.dims();
                let n: Vec<f32> = (0..b * w).map(|_| StandardNormal.sample(rng)).collect();
                let n = Tensor::<2>::from_data(TensorData::new(n, [b, w]), &h.device());
                h = h + n.mul(scale.val().unsqueeze());
            }
        }
        match (&self.out, &self.conv) {
            (_, Some(head)) => head.forward(h, &self.act, train, update_stats, noise),
            (Some(out), None) => out.forward(h),
            (None, None) => unreachable!("a generator is an MLP or a conv generator"),
        }
    }
}
