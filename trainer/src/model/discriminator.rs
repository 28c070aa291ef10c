//! Discriminator: for series an optional Conv1d trunk (stride 2), then an MLP, with optional spectral norm and minibatch standard deviation, class-conditional
//! by projection (Miyato & Koyama 2018: D(x, y) = ψ(φ(x)) + ⟨E·y, φ(x)⟩), and its exact input
//! gradient ∇ₓ Σ D(x, y) built from graph ops, layer by layer (a vector-Jacobian product), so a
//! penalty on it trains D's parameters.

use super::ids::{number_params, numbered_state};
use super::{init_conv, init_linear, power_iteration, spectral_sigma, Act};
use crate::config::ModelConfig;
use burn::module::{Module, Param, RunningState};
use burn::nn::Linear;
use burn::tensor::module::{conv1d, conv_transpose1d};
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
use burn::tensor::{Device, Tensor, TensorData};
use rand_distr::{Distribution, StandardNormal};
use rand_pcg::Pcg64Mcg;

const MBSTD_EPS: f64 = 1e-8;

/// Stride of every convolution of the trunk: each halves the length.
const CONV_STRIDE: usize = 2;

/// One Conv1d layer of the trunk: weight `[out, in, kernel]`.
#[derive(Module, Debug)]
pub struct ConvLayer {
    pub weight: Param<Tensor<3>>,
    pub bias: Param<Tensor<1>>,
}

#[derive(Module, Debug)]
pub struct Discriminator {
    /// Conv1d trunk over `[C, T]` series (empty: an MLP on the flat row).
    pub convs: Vec<ConvLayer>,
    /// `[channels, length]` of the input when the trunk is used.
    pub series: Vec<usize>,
    pub hidden: Vec<Linear>,
    pub out: Linear,
    /// Persistent power-iteration vectors, one per layer (hidden…, out), when spectral norm is on.
    pub sn_u: Vec<RunningState<Tensor<1>>>,
    pub minibatch_std: bool,
    /// Class embedding `[classes, features]` of the projection term (conditional D only).
    pub embed: Option<Param<Tensor<2>>>,
    #[module(skip)]
    pub act: Act,
}

/// The effective weights of one D step: spectrally normalised when enabled. Computing them once
/// per step lets the real, fake and penalty passes share one σ.
pub struct DWeights {
    pub convs: Vec<(Tensor<3>, Tensor<1>)>,
    pub layers: Vec<(Tensor<2>, Tensor<1>)>,
    /// σ of each layer (1 when spectral norm is off).
    pub sigmas: Vec<f32>,
}

impl Discriminator {
    /// `classes` > 0 makes D conditional: every call then takes one-hot class rows. An MLP on
    /// `input_dim` values (`model.d_conv` must be 0; see `new_series`).
    pub fn new(
        cfg: &ModelConfig,
        input_dim: usize,
        classes: usize,
        rng: &mut Pcg64Mcg,
        device: &Device,
    ) -> Self {
        Self::build(cfg, input_dim, None, classes, rng, device)
    }

    /// For `[channels, length]` series: the Conv1d trunk of `model.d_conv` layers, then the MLP.
    pub fn new_series(
        cfg: &ModelConfig,
        shape: [usize; 2],
        classes: usize,
        rng: &mut Pcg64Mcg,
        device: &Device,
    ) -> Self {
        Self::build(cfg, shape[0] * shape[1], Some(shape), classes, rng, device)
    }

    fn build(
        cfg: &ModelConfig,
        input_dim: usize,
        shape: Option<[usize; 2]>,
        classes: usize,
        rng: &mut Pcg64Mcg,
        device: &Device,
    ) -> Self {
        let mut convs = Vec::new();
        let mut d = input_dim;
        if let (Some([c, t]), true) = (shape, cfg.d_conv > 0) {
            let (mut ch, mut len) = (c, t);
            let k = cfg.d_conv_kernel;
            for _ in 0..cfg.d_conv {
                let out = cfg.d_conv_channels;
                convs.push(init_conv([out, ch, k], ch * k, rng, device));
                ch = out;
                len = conv_len(len, k);
            }
            d = ch * len;
        }
        let mut hidden = Vec::new();
        for _ in 0..cfg.d_depth {
            hidden.push(init_linear(d, cfg.d_width, rng, device));
            d = cfg.d_width;
        }
        let out_in = if cfg.d_minibatch_std { d + 1 } else { d };
        let out = init_linear(out_in, 1, rng, device);
        let mut sn_u = Vec::new();
        if cfg.spectral_norm {
            let outs = convs.iter().map(|c| c.weight.dims()[0]).chain(
                hidden
                    .iter()
                    .chain(std::iter::once(&out))
                    .map(|l| l.weight.dims()[1]),
            );
            for d_out in outs {
                let u: Vec<f32> = (0..d_out).map(|_| StandardNormal.sample(rng)).collect();
                let norm = u.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
                let u: Vec<f32> = u.iter().map(|x| x / norm).collect();
                sn_u.push(RunningState::new(Tensor::from_data(
                    TensorData::new(u, [d_out]),
                    device,
                )));
            }
        }
        // Projection embedding: small at the start so D begins close to unconditional.
        let features = if cfg.d_depth == 0 { d } else { cfg.d_width };
        let embed = (classes > 0).then(|| {
            let bound = 1.0 / (features as f32).sqrt();
            let v: Vec<f32> = (0..classes * features)
                .map(|_| rand::RngExt::random_range(rng, -bound..bound))
                .collect();
            Param::from_tensor(Tensor::from_data(
                TensorData::new(v, [classes, features]),
                device,
            ))
        });
        let d = Self {
            convs,
            series: if cfg.d_conv > 0 {
                shape.map_or(Vec::new(), |s| s.to_vec())
            } else {
                Vec::new()
            },
            hidden,
            out,
            sn_u,
            embed,
            minibatch_std: cfg.d_minibatch_std,
            act: Act::new(cfg.d_activation, cfg.leaky_slope),
        };
        d.numbered()
    }

    /// Deterministic parameter ids (see `ids`).
    fn numbered(self) -> Self {
        let base = super::DISCRIMINATOR_IDS;
        let mut d = number_params(self, base);
        for (k, u) in d.sn_u.iter_mut().enumerate() {
            *u = numbered_state(u, base, k);
        }
        d
    }

    /// Effective weights; `power_step` advances the power iteration (once per D update).
    pub fn weights(&self, power_step: bool) -> DWeights {
        let mut layers = Vec::new();
        let mut sigmas = Vec::new();
        let mut convs = Vec::new();
        for (i, c) in self.convs.iter().enumerate() {
            let w3 = c.weight.val();
            let [o, ci, k] = w3.dims();
            match self.sn_u.get(i) {
                Some(state) => {
                    // σ of the kernel as an [in·k, out] matrix, as for a Linear.
                    let w = w3.clone().reshape([o, ci * k]).transpose();
                    let (u, v) = power_iteration(&w, state.value_sync(), 1);
                    if power_step {
                        state.update(u.clone().detach());
                    }
                    let sigma = spectral_sigma(&w, &u, &v);
                    sigmas.push(sigma.clone().detach().into_scalar::<f32>());
                    convs.push((w3.div(sigma.reshape([1, 1, 1])), c.bias.val()));
                }
                None => {
                    sigmas.push(1.0);
                    convs.push((w3, c.bias.val()));
                }
            }
        }
        let skip = self.convs.len();
        for (i, l) in self
            .hidden
            .iter()
            .chain(std::iter::once(&self.out))
            .enumerate()
        {
            let w = l.weight.val();
            let b = l.bias.as_ref().expect("D layers have a bias").val();
            match self.sn_u.get(skip + i) {
                Some(state) => {
                    let u = state.value_sync();
                    let (u, v) = power_iteration(&w, u, 1);
                    if power_step {
                        state.update(u.clone().detach());
                    }
                    let sigma = spectral_sigma(&w, &u, &v);
                    sigmas.push(sigma.clone().detach().into_scalar::<f32>());
                    layers.push((w.div(sigma.unsqueeze()), b));
                }
                None => {
                    sigmas.push(1.0);
                    layers.push((w, b));
                }
            }
        }
        DWeights {
            convs,
            layers,
            sigmas,
        }
    }

    /// D(x, y) as logits, [B, 1]; `y` is one-hot `[B, classes]` for a conditional D, else `None`.
    pub fn forward(&self, w: &DWeights, x: Tensor<2>, y: Option<Tensor<2>>) -> Tensor<2> {
        self.run(w, x, y, None).0
    }

    /// D(x, y) and ∇ₓ Σᵢ D(xᵢ, yᵢ), both in the graph of D's parameters.
    pub fn forward_with_input_grad(
        &self,
        w: &DWeights,
        x: Tensor<2>,
        y: Option<Tensor<2>>,
    ) -> (Tensor<2>, Tensor<2>) {
        let rows = 0..x.dims()[0];
        self.forward_with_input_grad_of_rows(w, x, y, rows)
    }

    /// D(x, y) on every row and ∇ₓ Σᵢ D(xᵢ, yᵢ) for the rows in `rows` only: real and fake go
    /// through D as one batch (larger matmuls, one weight gradient per layer instead of two summed)
    /// while the input gradient, and the double backward a penalty on it costs, stays on the rows
    /// the penalty reads. Only for a D whose rows are independent: minibatch-std (which couples them) is
    /// refused unless `rows` is the whole batch.
    pub fn forward_with_input_grad_of_rows(
        &self,
        w: &DWeights,
        x: Tensor<2>,
        y: Option<Tensor<2>>,
        rows: std::ops::Range<usize>,
    ) -> (Tensor<2>, Tensor<2>) {
        assert!(
            !self.minibatch_std || rows == (0..x.dims()[0]),
            "minibatch-std couples the rows: the input gradient is over the whole batch"
        );
        let (out, grad) = self.run(w, x, y, Some(rows));
        (out, grad.expect("asked for the gradient"))
    }

    fn run(
        &self,
        w: &DWeights,
        x: Tensor<2>,
        y: Option<Tensor<2>>,
        grad_rows: Option<std::ops::Range<usize>>,
    ) -> (Tensor<2>, Option<Tensor<2>>) {
        let (hidden_w, last) = w.layers.split_at(w.layers.len() - 1);
        let mut pre = Vec::with_capacity(hidden_w.len());
        let (x, trunk) = self.trunk(w, x);
        let mut h = x;
        for (wt, b) in hidden_w {
            let a = h.matmul(wt.clone()).add(b.clone().unsqueeze());
            h = self.act.forward(a.clone());
            pre.push(a);
        }
        let [batch, features] = h.dims();
        // Projection: ⟨E·y, h⟩ per row; its gradient with respect to h is E·y.
        let class_vec = match (&self.embed, y) {
            (Some(e), Some(y)) => Some(y.matmul(e.val())),
            (None, None) => None,
            (Some(_), None) => panic!("a conditional D needs the class of every input"),
            (None, Some(_)) => panic!("an unconditional D takes no class"),
        };
        let projection = class_vec
            .as_ref()
            .map(|e| h.clone().mul(e.clone()).sum_dim(1));
        let mbstd = self.minibatch_std.then(|| MinibatchStd::new(&h));
        let h_out = match &mbstd {
            Some(m) => Tensor::cat(vec![h, m.feature.clone().expand([batch, 1])], 1),
            None => h,
        };
        let (w_out, b_out) = &last[0];
        let mut out = h_out.matmul(w_out.clone()).add(b_out.clone().unsqueeze());
        if let Some(p) = projection {
            out = out + p;
        }
        let Some(rows) = grad_rows else {
            return (out, None);
        };
        // Only the rows asked for (all of them unless real and fake share the batch).
        let whole = rows == (0..batch);
        let (start, n) = (rows.start, rows.len());
        let of_rows = |t: Tensor<2>| if whole { t } else { t.narrow(0, start, n) };
        // Upstream gradient of Σ out is ones; through the last Linear it is w_outᵀ on every row.
        let row = w_out.clone().transpose(); // [1, in]
        let mut g = row.clone().narrow(1, 0, features).expand([n, features]);
        if let Some(e) = class_vec {
            g = g + of_rows(e);
        }
        if let Some(m) = &mbstd {
            let g_std = row.narrow(1, features, 1).mul_scalar(batch as f64); // Σ over the batch
            g = g + m.vjp(g_std);
        }
        for ((wt, _), a) in hidden_w.iter().zip(pre).rev() {
            g = g
                .mul(self.act.derivative(of_rows(a)))
                .matmul(wt.clone().transpose());
        }
        let trunk = if whole { trunk } else { trunk.rows(start, n) };
        (out, Some(self.trunk_vjp(w, trunk, g)))
    }

    /// The Conv1d trunk: flat `[B, C·T]` rows in, flat features out, with what its VJP needs.
    fn trunk(&self, w: &DWeights, x: Tensor<2>) -> (Tensor<2>, Trunk) {
        let mut t = Trunk::default();
        if w.convs.is_empty() {
            return (x, t);
        }
        let [b, _] = x.dims();
        let mut h = x.reshape([b, self.series[0], self.series[1]]);
        for (wt, bias) in &w.convs {
            let k = wt.dims()[2];
            let opts = ConvOptions::new([CONV_STRIDE], [k / 2], [1], 1);
            t.lengths.push(h.dims()[2]);
            let a = conv1d(h, wt.clone(), Some(bias.clone()), opts);
            let dims = a.dims();
            let flat = a.reshape([b, dims[1] * dims[2]]);
            h = self.act.forward(flat.clone()).reshape(dims);
            t.pre.push(flat);
        }
        let dims = h.dims();
        t.out_dims = dims;
        (h.reshape([b, dims[1] * dims[2]]), t)
    }

    /// The trunk's vector-Jacobian product: a strided Conv1d's is the transposed convolution with
    /// the same kernel (`padding_out` restores the input length), times the activation's mask.
    fn trunk_vjp(&self, w: &DWeights, t: Trunk, g: Tensor<2>) -> Tensor<2> {
        if w.convs.is_empty() {
            return g;
        }
        let [b, _] = g.dims();
        let mut g = g.reshape(t.out_dims);
        for (((wt, _), pre), len_in) in w.convs.iter().zip(t.pre).zip(t.lengths).rev() {
            let dims = g.dims();
            let gd = g
                .reshape([b, dims[1] * dims[2]])
                .mul(self.act.derivative(pre));
            let k = wt.dims()[2];
            let pad = k / 2;
            let len_out = dims[2];
            let natural = (len_out - 1) * CONV_STRIDE + k - 2 * pad;
            let opts = ConvTransposeOptions::new([CONV_STRIDE], [pad], [len_in - natural], [1], 1);
            g = conv_transpose1d(gd.reshape(dims), wt.clone(), None, opts);
        }
        let dims = g.dims();
        g.reshape([b, dims[1] * dims[2]])
    }
}

/// Output length of a stride-2 convolution with `k / 2` padding.
fn conv_len(len: usize, k: usize) -> usize {
    (len + 2 * (k / 2) - k) / CONV_STRIDE + 1
}

/// What the trunk's forward keeps for its VJP.
#[derive(Default)]
struct Trunk {
    /// Pre-activations, flat per layer.
    pre: Vec<Tensor<2>>,
    /// Input length of each layer.
    lengths: Vec<usize>,
    out_dims: [usize; 3],
}

impl Trunk {
    /// The same, for rows `start..start + n` of the batch.
    fn rows(self, start: usize, n: usize) -> Self {
        let [_, c, l] = self.out_dims;
        Self {
            pre: self
                .pre
                .into_iter()
                .map(|p| p.narrow(0, start, n))
                .collect(),
            lengths: self.lengths,
            out_dims: [n, c, l],
        }
    }
}

/// s = mean_j sqrt(var_b(h_bj) + ε), the same scalar appended to every row (Karras et al. 2018).
struct MinibatchStd {
    centred: Tensor<2>,
    sd: Tensor<2>,
    feature: Tensor<2>,
}

impl MinibatchStd {
    fn new(h: &Tensor<2>) -> Self {
        let mean = h.clone().mean_dim(0);
        let centred = h.clone().sub(mean);
        let sd = centred
            .clone()
            .powi_scalar(2)
            .mean_dim(0)
            .add_scalar(MBSTD_EPS)
            .sqrt(); // [1, F]
        let feature = sd.clone().mean_dim(1); // [1, 1]
        Self {
            centred,
            sd,
            feature,
        }
    }

    /// ∂(g_s · s)/∂h for the scalar upstream g_s ([1, 1]): g_s · (h − μ) / (F · B · sd).
    fn vjp(&self, g_s: Tensor<2>) -> Tensor<2> {
        let [batch, features] = self.centred.dims();
        let scale = g_s.div_scalar((batch * features) as f64);
        self.centred.clone().div(self.sd.clone()).mul(scale)
    }
}
