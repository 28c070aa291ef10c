//! The D and G updates of an all-MLP GAN — the default recipe on tables and on series — with their
//! gradients taken by hand on the inner backend, instead of through burn's autodiff graph.
//!
//! Why: in the series step the products are about two thirds of the time and Adam 7 %; most of the
//! rest is the graph itself (a node, an allocation and a pass per op, gradients summed op by op;
//! docs/benchmarks.md, "The matmul ceiling"). Written out, a layer is one product forward, one
//! fused pass (bias and activation), one pass for the activation's mask and two products back.
//!
//! The input gradient a penalty reads (R1 on the real rows, R2 on the fake ones) is D's backward
//! pass with an upstream gradient of one, so its rows are appended to the loss's backward rows and
//! go through the same products; its own backward (the "double backward" of the penalty) then adds
//! its rows to the same weight-gradient products. Piecewise-linear activations only: their second
//! derivative is zero, so the masks are constants, as `Act::derivative` makes them in the graph.
//!
//! The arithmetic is the graph's, in another order (sums of several terms, the stacked products),
//! so a run differs from `train.fused_step = false` in rounding; `tests` check the gradients
//! against burn's autodiff.

use super::clip::sum_sq;
use super::in_place::Slab;
use crate::config::{Activation, LossKind, TrainConfig};
use crate::model::{Act, Discriminator, Generator};
use burn::module::ParamId;
use burn::nn::Linear;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};

/// Whether this configuration's updates can be taken here: MLPs with ReLU or LeakyReLU, no batch
/// norm, injected noise, spectral norm, minibatch-std or conv layers; a loss whose gradient is one
/// value per row (not the relativistic one); R1/R2 but not the gradient penalty; no weight
/// penalties, instance noise or augmentation; burn's CPU backend.
pub(super) fn applies(
    cfg: &TrainConfig,
    g: &Generator,
    d: &Discriminator,
    device: &Device,
) -> bool {
    let r = &cfg.regularize;
    cfg.train.fused_step
        && *device == Device::flex()
        && cfg.loss.kind != LossKind::RelativisticAverage
        && cfg.penalty.gp == 0.0
        && [r.l1_g, r.l2_g, r.l1_d, r.l2_d, r.instance_noise] == [0.0; 5]
        && !cfg.augment.enabled()
        && g.conv.is_none()
        && g.norms.is_empty()
        && g.noise_scales.is_empty()
        && Pw::of(&g.act).is_some()
        && d.convs.is_empty()
        && d.sn_u.is_empty()
        && !d.minibatch_std
        && !d.hidden.is_empty()
        && Pw::of(&d.act).is_some()
}

/// What the D update measured: its outputs on the real and the fake rows, its loss (penalty
/// included) and the penalty alone.
pub(super) struct DTerms {
    pub r: Vec<f32>,
    pub f: Vec<f32>,
    pub loss: f64,
    pub penalty: f64,
}

/// The loss settings the updates read.
#[derive(Clone, Copy)]
pub(super) struct Objective {
    pub kind: LossKind,
    pub label_smoothing: f64,
    pub r1: f64,
    pub r2: f64,
}

impl Objective {
    pub fn of(cfg: &TrainConfig) -> Self {
        Self {
            kind: cfg.loss.kind,
            label_smoothing: cfg.loss.label_smoothing,
            r1: cfg.penalty.r1,
            r2: cfg.penalty.r2,
        }
    }
}

/// D's gradients for one update on `real` and `fake` (`[B, dim]` each, inner backend), with the
/// classes of the rows (both halves share them) for a conditional D.
pub(super) fn d_gradients(
    d: &Discriminator,
    real: Tensor<2>,
    fake: Tensor<2>,
    classes: Option<&[usize]>,
    obj: Objective,
) -> (GradientsParams, DTerms) {
    let net = DNet::of(d);
    let b = real.dims()[0];
    let n = 2 * b;
    // Rows of the backward pass: the n rows of the loss, then the rows whose input gradient a
    // penalty reads (each the copy of a source row, with an upstream gradient of one).
    let mut srcs: Vec<usize> = (0..n).collect();
    let mut gammas = Vec::new();
    for (gamma, rows) in [(obj.r1, 0..b), (obj.r2, b..n)] {
        if gamma > 0.0 {
            srcs.extend(rows.clone());
            gammas.extend(rows.map(|_| gamma as f32));
        }
    }
    let p = gammas.len();

    // Each level holds a layer's input on the loss's n rows and, below them, the gradient the
    // penalty sends back to it on its p rows (written on the way up): one weight-gradient product
    // then serves both, without copying them together.
    let mut levels = vec![stack(&[real, fake], p)];
    for layer in &net.hidden {
        let h = levels[levels.len() - 1].clone().narrow(0, 0, n);
        levels.push(layer.forward_stacked(h, Some(net.act), p));
    }
    let depth = net.hidden.len();
    let cls: Option<Vec<usize>> = classes.map(|c| c.iter().chain(c).copied().collect());
    let top = Slab::new(levels[depth].clone());
    let out = net.head(&top.values()[..n * net.features], cls.as_deref());
    let (loss, s) = d_loss_rows(obj, &out[..b], &out[b..]);
    let mut up = s.clone();
    up.resize(n + p, 1.0);
    let mut delta = net.top_delta(top.values(), cls.as_deref(), &srcs, &up);
    drop(top);

    // Down the layers: Δ_l for every layer; the input gradient of the penalised rows at the bottom.
    let mut deltas = Vec::with_capacity(depth);
    let mut gx = None;
    for l in (0..depth).rev() {
        let wt = net.hidden[l].w.clone().transpose();
        if l > 0 {
            let back = delta.clone().matmul(wt);
            deltas.push(delta);
            delta = mask(back, &levels[l], &srcs, net.act);
        } else {
            if p > 0 {
                gx = Some(delta.clone().narrow(0, n, p).matmul(wt));
            }
            deltas.push(delta.clone());
        }
    }
    deltas.reverse();

    // The penalty Σ γ/(2B)·‖∇ₓD‖² and its gradient with respect to ∇ₓD, γ/B·∇ₓD, below the inputs.
    let mut penalty = 0.0f64;
    if let Some(gx) = gx {
        let gx = Slab::new(gx);
        in_place(&mut levels[0], |v| {
            let cols = gx.values().len() / p;
            penalty = pulp::Arch::new().dispatch(Penalty {
                out: &mut v[n * cols..],
                gx: gx.values(),
                gammas: &gammas,
                batch: b,
            });
        });
    }

    // Up the layers: each weight gradient from the loss's rows and the penalty's in one product.
    let mut grads = GradientsParams::new();
    let pen_srcs = &srcs[n..];
    for (l, layer) in net.hidden.iter().enumerate() {
        let left = levels[l].clone();
        grads.register(layer.w_id, left.transpose().matmul(deltas[l].clone()));
        let db = col_sums(
            &Slab::new(deltas[l].clone()).values()[..n * layer.width],
            layer.width,
        );
        grads.register(layer.b_id, tensor1(db, &net.device));
        if p > 0 {
            let back = Slab::new(levels[l].clone().narrow(0, n, p).matmul(layer.w.clone()));
            in_place(&mut levels[l + 1], |v| {
                let (h, below) = v.split_at_mut(n * layer.width);
                pulp::Arch::new().dispatch(Mask {
                    out: below,
                    g: Some(back.values()),
                    h,
                    srcs: pen_srcs,
                    act: net.act,
                });
            });
        }
    }
    let top = Slab::new(levels[depth].clone());
    let (top, gbar) = top.values().split_at(n * net.features);
    net.head_grads(
        &mut grads,
        top,
        cls.as_deref(),
        &s,
        (p > 0).then_some((gbar, pen_srcs)),
    );
    let (r, f) = out.split_at(b);
    let terms = DTerms {
        r: r.to_vec(),
        f: f.to_vec(),
        loss: loss + penalty,
        penalty,
    };
    (grads, terms)
}

/// `parts` one below the other, then `extra` rows of zeros: `[Σ rows + extra, cols]`.
fn stack(parts: &[Tensor<2>], extra: usize) -> Tensor<2> {
    let cols = parts[0].dims()[1];
    let rows: usize = parts.iter().map(|t| t.dims()[0]).sum::<usize>() + extra;
    let mut v = Vec::with_capacity(rows * cols);
    for t in parts {
        v.extend_from_slice(Slab::new(plain(t.clone())).values());
    }
    v.resize(rows * cols, 0.0);
    Tensor::from_data(TensorData::new(v, [rows, cols]), &parts[0].device())
}

/// `f` on `t`'s values, changed where they lie (`t`'s buffer is not shared at the call sites).
fn in_place(t: &mut Tensor<2>, f: impl FnOnce(&mut [f32])) {
    let stand_in = Tensor::<2>::empty([0, 0], &t.device());
    let mut slab = Slab::new(std::mem::replace(t, stand_in));
    f(slab.values_mut());
    *t = slab.into_tensor();
}

/// G's gradients for one update: `z` is G's input `[B, latent + classes]` (inner backend), scored
/// by the current D (not updated). Returns them with G's loss.
pub(super) fn g_gradients(
    g: &Generator,
    d: &Discriminator,
    z: Tensor<2>,
    classes: Option<&[usize]>,
    kind: LossKind,
) -> (GradientsParams, f64) {
    let gen = GNet::of(g);
    let net = DNet::of(d);
    let hg = gen.forward(z);
    let fake = hg[hg.len() - 1].clone();
    let hs = net.forward(fake);
    let top = Slab::new(hs[hs.len() - 1].clone());
    let out = net.head(top.values(), classes);
    let (loss, s) = g_loss_rows(kind, &out);
    let srcs: Vec<usize> = (0..out.len()).collect();
    let mut delta = net.top_delta(top.values(), classes, &srcs, &s);
    drop(top);
    // Through D to its input.
    for l in (0..net.hidden.len()).rev() {
        let back = delta.matmul(net.hidden[l].w.clone().transpose());
        delta = if l > 0 {
            mask(back, &hs[l], &srcs, net.act)
        } else {
            back
        };
    }
    // Through G: the output layer has no activation.
    let mut grads = GradientsParams::new();
    let last = gen.layers.len() - 1;
    for l in (0..=last).rev() {
        let layer = &gen.layers[l];
        grads.register(layer.w_id, hg[l].clone().transpose().matmul(delta.clone()));
        let db = col_sums(Slab::new(delta.clone()).values(), layer.width);
        grads.register(layer.b_id, tensor1(db, &gen.device));
        if l > 0 {
            let back = delta.matmul(layer.w.clone().transpose());
            delta = mask(back, &hg[l], &srcs, gen.act);
        }
    }
    (grads, loss)
}

/// G's output for `z` (inner backend): what `Generator::forward` computes for these models (the
/// same products, bias adds and ReLUs, in the same order), without burn's separate passes.
pub(super) fn generate(g: &Generator, z: Tensor<2>) -> Tensor<2> {
    let mut hs = GNet::of(g).forward(z);
    hs.pop().expect("G has an output layer")
}

/// Class indices of one-hot rows.
pub(super) fn class_indices(y: &Tensor<2>) -> Vec<usize> {
    let [_, c] = y.dims();
    let v = Slab::new(plain(y.clone()));
    v.values()
        .chunks_exact(c)
        .map(|row| row.iter().position(|x| *x == 1.0).unwrap_or(0))
        .collect()
}

/// The tensor on the inner backend (a parameter is tracked; an input need not be).
pub(super) fn plain<const D: usize>(t: Tensor<D>) -> Tensor<D> {
    if t.is_autodiff() {
        t.inner()
    } else {
        t
    }
}

fn tensor1(v: Vec<f32>, device: &Device) -> Tensor<1> {
    let n = v.len();
    Tensor::from_data(TensorData::new(v, [n]), device)
}

/// A Linear layer's weight `[in, out]` and bias on the inner backend, with their ids.
struct Layer {
    w: Tensor<2>,
    b: Tensor<1>,
    width: usize,
    w_id: ParamId,
    b_id: ParamId,
}

impl Layer {
    fn of(l: &Linear) -> Self {
        let bias = l.bias.as_ref().expect("Keel's layers have a bias");
        let w = plain(l.weight.val());
        Self {
            width: w.dims()[1],
            w,
            b: plain(bias.val()),
            w_id: l.weight.id,
            b_id: bias.id,
        }
    }

    /// φ(`h`·W + b) (no φ: the output layer), in one pass over the product.
    fn forward(&self, h: Tensor<2>, act: Option<Pw>) -> Tensor<2> {
        self.forward_stacked(h, act, 0)
    }

    /// φ(`h`·W + b) on `h`'s rows (no φ: the output layer), then `extra` rows of zeros below them.
    fn forward_stacked(&self, h: Tensor<2>, act: Option<Pw>, extra: usize) -> Tensor<2> {
        let n = h.dims()[0];
        let a = Slab::new(h.matmul(self.w.clone()));
        let bias = Slab::new(self.b.clone());
        let mut v = Vec::with_capacity((n + extra) * self.width);
        pulp::Arch::new().dispatch(BiasActInto {
            out: &mut v.spare_capacity_mut()[..n * self.width],
            a: a.values(),
            bias: bias.values(),
            act,
        });
        // SAFETY: `BiasActInto` wrote each of the first n · width elements.
        unsafe { v.set_len(n * self.width) };
        v.resize((n + extra) * self.width, 0.0);
        Tensor::from_data(
            TensorData::new(v, [n + extra, self.width]),
            &self.w.device(),
        )
    }
}

/// G: hidden layers, then the output layer.
struct GNet {
    layers: Vec<Layer>,
    act: Pw,
    device: Device,
}

impl GNet {
    fn of(g: &Generator) -> Self {
        let out = g
            .out
            .as_ref()
            .expect("an MLP generator has an output layer");
        let layers: Vec<Layer> = g.hidden.iter().chain([out]).map(Layer::of).collect();
        Self {
            device: layers[0].w.device(),
            layers,
            act: Pw::of(&g.act).expect("checked by `applies`"),
        }
    }

    /// Every layer's input, then G's output: `[z, h₁, …, x]`.
    fn forward(&self, z: Tensor<2>) -> Vec<Tensor<2>> {
        let last = self.layers.len() - 1;
        let mut hs = vec![z];
        for (l, layer) in self.layers.iter().enumerate() {
            let act = (l < last).then_some(self.act);
            hs.push(layer.forward(hs[l].clone(), act));
        }
        hs
    }
}

/// D: hidden layers, then the head — the output layer's weights `[F]` and bias, and the class
/// embedding `[classes, F]` of the projection term.
struct DNet {
    hidden: Vec<Layer>,
    w_out: Vec<f32>,
    b_out: f32,
    embed: Option<Vec<f32>>,
    out_ids: (ParamId, ParamId),
    embed_id: Option<ParamId>,
    features: usize,
    act: Pw,
    device: Device,
}

impl DNet {
    fn of(d: &Discriminator) -> Self {
        let hidden: Vec<Layer> = d.hidden.iter().map(Layer::of).collect();
        let out = Layer::of(&d.out);
        let features = out.w.dims()[0];
        let values = |t: Tensor<2>| Slab::new(t).values().to_vec();
        Self {
            device: out.w.device(),
            w_out: values(out.w.clone()),
            b_out: Slab::new(out.b.clone()).values()[0],
            embed: d.embed.as_ref().map(|e| values(plain(e.val()))),
            out_ids: (out.w_id, out.b_id),
            embed_id: d.embed.as_ref().map(|e| e.id),
            features,
            hidden,
            act: Pw::of(&d.act).expect("checked by `applies`"),
        }
    }

    /// `[x, h₁, …, h_L]`.
    fn forward(&self, x: Tensor<2>) -> Vec<Tensor<2>> {
        let mut hs = vec![x];
        for (l, layer) in self.hidden.iter().enumerate() {
            hs.push(layer.forward(hs[l].clone(), Some(self.act)));
        }
        hs
    }

    /// The class vector E·y of a row (`None`: an unconditional D).
    fn class_vec(&self, classes: Option<&[usize]>, row: usize) -> Option<&[f32]> {
        let (e, c) = (self.embed.as_ref()?, classes?);
        Some(&e[c[row] * self.features..][..self.features])
    }

    /// D(x, y) per row: h·w + b + ⟨E·y, h⟩.
    fn head(&self, top: &[f32], classes: Option<&[usize]>) -> Vec<f32> {
        struct Op<'a>(&'a DNet, &'a [f32], Option<&'a [usize]>);
        impl pulp::WithSimd for Op<'_> {
            type Output = Vec<f32>;
            #[inline(always)]
            fn with_simd<S: pulp::Simd>(self, _: S) -> Vec<f32> {
                self.0.head_rows(self.1, self.2)
            }
        }
        pulp::Arch::new().dispatch(Op(self, top, classes))
    }

    #[inline(always)]
    fn head_rows(&self, top: &[f32], classes: Option<&[usize]>) -> Vec<f32> {
        let f = self.features;
        top.chunks_exact(f)
            .enumerate()
            .map(|(i, h)| {
                let mut o = dot(h, &self.w_out) + self.b_out;
                if let Some(e) = self.class_vec(classes, i) {
                    o += dot(h, e);
                }
                o
            })
            .collect()
    }

    /// Δ_L = up·(w + E·y) ⊙ φ'(h_L) for each backward row (row `r` a copy of row `srcs[r]`).
    fn top_delta(
        &self,
        top: &[f32],
        classes: Option<&[usize]>,
        srcs: &[usize],
        up: &[f32],
    ) -> Tensor<2> {
        struct Op<'a>(
            &'a DNet,
            &'a [f32],
            Option<&'a [usize]>,
            &'a [usize],
            &'a [f32],
        );
        impl pulp::WithSimd for Op<'_> {
            type Output = Tensor<2>;
            #[inline(always)]
            fn with_simd<S: pulp::Simd>(self, _: S) -> Tensor<2> {
                self.0.top_delta_rows(self.1, self.2, self.3, self.4)
            }
        }
        pulp::Arch::new().dispatch(Op(self, top, classes, srcs, up))
    }

    #[inline(always)]
    fn top_delta_rows(
        &self,
        top: &[f32],
        classes: Option<&[usize]>,
        srcs: &[usize],
        up: &[f32],
    ) -> Tensor<2> {
        let f = self.features;
        let mut v = vec![0.0f32; srcs.len() * f];
        for ((row, &src), &u) in v.chunks_exact_mut(f).zip(srcs).zip(up) {
            let h = &top[src * f..][..f];
            match self.class_vec(classes, src) {
                Some(e) => {
                    for j in 0..f {
                        row[j] = u * (self.w_out[j] + e[j]) * self.act.d(h[j]);
                    }
                }
                None => {
                    for j in 0..f {
                        row[j] = u * self.w_out[j] * self.act.d(h[j]);
                    }
                }
            }
        }
        Tensor::from_data(TensorData::new(v, [srcs.len(), f]), &self.device)
    }

    /// The head's gradients: output weights and bias and the embedding, from the loss's rows
    /// (upstream `s`, features `top`) and, when a penalty is on, from the gradient `ḡ_L` it sends
    /// back to ∂D/∂h_L = w + E·y on its rows (`pen`: values and source rows).
    fn head_grads(
        &self,
        grads: &mut GradientsParams,
        top: &[f32],
        classes: Option<&[usize]>,
        s: &[f32],
        pen: Option<(&[f32], &[usize])>,
    ) {
        type Pen<'a> = Option<(&'a [f32], &'a [usize])>;
        struct Op<'a>(&'a DNet, &'a [f32], Option<&'a [usize]>, &'a [f32], Pen<'a>);
        impl pulp::WithSimd for Op<'_> {
            type Output = (Vec<f32>, Option<Vec<f32>>);
            #[inline(always)]
            fn with_simd<S: pulp::Simd>(self, _: S) -> Self::Output {
                self.0.head_grad_values(self.1, self.2, self.3, self.4)
            }
        }
        let (dw, de) = pulp::Arch::new().dispatch(Op(self, top, classes, s, pen));
        let (f, dev) = (self.features, &self.device);
        grads.register(
            self.out_ids.0,
            Tensor::<2>::from_data(TensorData::new(dw, [f, 1]), dev),
        );
        grads.register(self.out_ids.1, tensor1(vec![s.iter().sum()], dev));
        if let (Some(de), Some(id)) = (de, self.embed_id) {
            let rows = de.len() / f;
            grads.register(
                id,
                Tensor::<2>::from_data(TensorData::new(de, [rows, f]), dev),
            );
        }
    }

    /// The gradients of the output weights and of the embedding.
    #[inline(always)]
    fn head_grad_values(
        &self,
        top: &[f32],
        classes: Option<&[usize]>,
        s: &[f32],
        pen: Option<(&[f32], &[usize])>,
    ) -> (Vec<f32>, Option<Vec<f32>>) {
        let f = self.features;
        let mut dw = vec![0.0f32; f];
        let mut de = self.embed.as_ref().map(|e| vec![0.0f32; e.len()]);
        for (i, (h, &si)) in top.chunks_exact(f).zip(s).enumerate() {
            for j in 0..f {
                dw[j] += h[j] * si;
            }
            if let (Some(de), Some(c)) = (de.as_mut(), classes) {
                let row = &mut de[c[i] * f..][..f];
                for j in 0..f {
                    row[j] += si * h[j];
                }
            }
        }
        if let Some((gbar, srcs)) = pen {
            for (g, &src) in gbar.chunks_exact(f).zip(srcs) {
                for j in 0..f {
                    dw[j] += g[j];
                }
                if let (Some(de), Some(c)) = (de.as_mut(), classes) {
                    let row = &mut de[c[src] * f..][..f];
                    for j in 0..f {
                        row[j] += g[j];
                    }
                }
            }
        }
        (dw, de)
    }
}

/// Σ aᵢbᵢ in sixteen partial sums (one AVX-512 register, two AVX2 ones), added in a fixed order:
/// the same figure at any SIMD width. A single running sum is a chain of dependent adds.
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 16;
    let mut acc = [0.0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for k in 0..LANES {
            acc[k] += x[k] * y[k];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// ReLU or LeakyReLU, as `Act` computes them in the graph (LeakyReLU as `a·x + (1 − a)·relu(x)`,
/// the form burn-onnx exports), and their derivative read off the output: for a slope ≥ 0,
/// φ(x) > 0 exactly when x > 0, the mask `Act::derivative` takes from the pre-activation.
#[derive(Clone, Copy)]
struct Pw {
    slope: f32,
    keep: f32,
    leaky: bool,
    /// φ' where x > 0 and where x ≤ 0: `Act::derivative`'s `mask·(1 − a) + a`.
    dpos: f32,
    dneg: f32,
}

impl Pw {
    fn of(act: &Act) -> Option<Self> {
        match act.kind {
            Activation::Relu => Some(Self {
                slope: 0.0,
                keep: 1.0,
                leaky: false,
                dpos: 1.0,
                dneg: 0.0,
            }),
            Activation::LeakyRelu if (0.0..1.0).contains(&act.slope) => {
                let (slope, keep) = (act.slope as f32, (1.0 - act.slope) as f32);
                Some(Self {
                    slope,
                    keep,
                    leaky: true,
                    dpos: keep + slope,
                    dneg: slope,
                })
            }
            _ => None,
        }
    }

    #[inline(always)]
    fn f(self, x: f32) -> f32 {
        if self.leaky {
            x * self.slope + x.max(0.0) * self.keep
        } else {
            x.max(0.0)
        }
    }

    #[inline(always)]
    fn d(self, y: f32) -> f32 {
        if y > 0.0 {
            self.dpos
        } else {
            self.dneg
        }
    }
}

/// `g ⊙ φ'(h)` in place, row `r` of `g` against row `srcs[r]` of `h`.
fn mask(g: Tensor<2>, h: &Tensor<2>, srcs: &[usize], act: Pw) -> Tensor<2> {
    let mut g = Slab::new(g);
    let h = Slab::new(h.clone());
    pulp::Arch::new().dispatch(Mask {
        out: g.values_mut(),
        g: None,
        h: h.values(),
        srcs,
        act,
    });
    g.into_tensor()
}

/// Column sums of row-major rows of `cols` values, the rows added in order.
fn col_sums(v: &[f32], cols: usize) -> Vec<f32> {
    pulp::Arch::new().dispatch(ColSums { v, cols })
}

// The loops below are `pulp` ops: `with_simd` is inlined into an AVX-512 / AVX2 copy of the loop,
// which a closure handed to the dispatcher would not be (fused_adam.rs).

struct BiasActInto<'a> {
    out: &'a mut [std::mem::MaybeUninit<f32>],
    a: &'a [f32],
    bias: &'a [f32],
    act: Option<Pw>,
}

impl pulp::WithSimd for BiasActInto<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let cols = self.bias.len();
        let rows = self
            .out
            .chunks_exact_mut(cols)
            .zip(self.a.chunks_exact(cols));
        for (o, a) in rows {
            let each = o.iter_mut().zip(a).zip(self.bias);
            match self.act {
                Some(p) => each.for_each(|((o, x), b)| {
                    o.write(p.f(x + b));
                }),
                None => each.for_each(|((o, x), b)| {
                    o.write(x + b);
                }),
            }
        }
    }
}

/// Σ γ/(2B)·‖g‖² over the rows of `gx`, writing γ/B·g into `out`'s rows.
struct Penalty<'a> {
    out: &'a mut [f32],
    gx: &'a [f32],
    gammas: &'a [f32],
    batch: usize,
}

impl pulp::WithSimd for Penalty<'_> {
    type Output = f64;

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) -> f64 {
        let cols = self.gx.len() / self.gammas.len();
        let b = self.batch;
        let rows = self
            .out
            .chunks_exact_mut(cols)
            .zip(self.gx.chunks_exact(cols));
        let mut total = 0.0;
        for ((o, g), &gamma) in rows.zip(self.gammas) {
            total += f64::from(gamma) / (2.0 * b as f64) * sum_sq(g);
            let k = gamma / b as f32;
            o.iter_mut().zip(g).for_each(|(o, x)| *o = x * k);
        }
        total
    }
}

/// `out[r] = g[r] ⊙ φ'(h[srcs[r]])` row by row; without `g`, `out` holds g and is scaled in place.
struct Mask<'a> {
    out: &'a mut [f32],
    g: Option<&'a [f32]>,
    h: &'a [f32],
    srcs: &'a [usize],
    act: Pw,
}

impl pulp::WithSimd for Mask<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let cols = self.out.len() / self.srcs.len();
        let act = self.act;
        for (r, (o, &src)) in self.out.chunks_exact_mut(cols).zip(self.srcs).enumerate() {
            let h = &self.h[src * cols..][..cols];
            match self.g {
                Some(g) => o
                    .iter_mut()
                    .zip(&g[r * cols..][..cols])
                    .zip(h)
                    .for_each(|((o, x), y)| *o = x * act.d(*y)),
                None => o.iter_mut().zip(h).for_each(|(x, y)| *x *= act.d(*y)),
            }
        }
    }
}

struct ColSums<'a> {
    v: &'a [f32],
    cols: usize,
}

impl pulp::WithSimd for ColSums<'_> {
    type Output = Vec<f32>;

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) -> Vec<f32> {
        let mut acc = vec![0.0f32; self.cols];
        for row in self.v.chunks_exact(self.cols) {
            acc.iter_mut().zip(row).for_each(|(a, x)| *a += x);
        }
        acc
    }
}

/// σ(x), without overflow for large |x|.
fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// log(1 + eˣ).
fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

fn mean(v: impl Iterator<Item = f64>, n: usize) -> f64 {
    v.sum::<f64>() / n as f64
}

/// D's loss on logits (or critic values) `r`, `f`, and its gradient with respect to each, real
/// rows then fake rows: the per-row forms of `objective::d_loss`.
fn d_loss_rows(obj: Objective, r: &[f32], f: &[f32]) -> (f64, Vec<f32>) {
    let (nr, nf) = (r.len(), f.len());
    let (br, bf) = (nr as f32, nf as f32);
    let t = 1.0 - obj.label_smoothing;
    let tf = t as f32;
    let r64 = || r.iter().map(|x| f64::from(*x));
    let f64s = || f.iter().map(|x| f64::from(*x));
    let (loss, gr, gf): (f64, Vec<f32>, Vec<f32>) = match obj.kind {
        LossKind::NonSaturating | LossKind::Minimax => (
            mean(
                r64().map(|x| t * softplus(-x) + (1.0 - t) * softplus(x)),
                nr,
            ) + mean(f64s().map(softplus), nf),
            r.iter()
                .map(|&x| {
                    if tf == 1.0 {
                        -sigmoid(-x) / br
                    } else {
                        (sigmoid(x) - tf) / br
                    }
                })
                .collect(),
            f.iter().map(|&x| sigmoid(x) / bf).collect(),
        ),
        LossKind::Wasserstein => (
            mean(f64s(), nf) - mean(r64(), nr),
            vec![-1.0 / br; nr],
            vec![1.0 / bf; nf],
        ),
        LossKind::Hinge => (
            mean(r64().map(|x| (1.0 - x).max(0.0)), nr)
                + mean(f64s().map(|x| (1.0 + x).max(0.0)), nf),
            r.iter()
                .map(|&x| if x < 1.0 { -1.0 / br } else { 0.0 })
                .collect(),
            f.iter()
                .map(|&x| if x > -1.0 { 1.0 / bf } else { 0.0 })
                .collect(),
        ),
        LossKind::LeastSquares => (
            0.5 * (mean(r64().map(|x| (x - t).powi(2)), nr) + mean(f64s().map(|x| x * x), nf)),
            r.iter().map(|&x| 0.5 * 2.0 * (x - tf) / br).collect(),
            f.iter().map(|&x| 0.5 * 2.0 * x / bf).collect(),
        ),
        LossKind::RelativisticAverage => unreachable!("refused by `applies`"),
    };
    (loss, gr.into_iter().chain(gf).collect())
}

/// G's loss on D's outputs for its fakes and its gradient per row (`objective::g_loss`).
fn g_loss_rows(kind: LossKind, f: &[f32]) -> (f64, Vec<f32>) {
    let n = f.len();
    let b = n as f32;
    let f64s = || f.iter().map(|x| f64::from(*x));
    match kind {
        LossKind::NonSaturating => (
            mean(f64s().map(|x| softplus(-x)), n),
            f.iter().map(|&x| -sigmoid(-x) / b).collect(),
        ),
        LossKind::Minimax => (
            -mean(f64s().map(softplus), n),
            f.iter().map(|&x| -sigmoid(x) / b).collect(),
        ),
        LossKind::Wasserstein | LossKind::Hinge => (-mean(f64s(), n), vec![-1.0 / b; n]),
        LossKind::LeastSquares => (
            0.5 * mean(f64s().map(|x| (x - 1.0).powi(2)), n),
            f.iter().map(|&x| 0.5 * 2.0 * (x - 1.0) / b).collect(),
        ),
        LossKind::RelativisticAverage => unreachable!("refused by `applies`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigBuilder;
    use crate::model::generator::GenMode;
    use crate::objective::{d_loss, g_loss, grad_sq_penalty};
    use crate::train::{normal_tensor, one_hot};
    use burn::module::{Module, ModuleVisitor, Param};
    use rand::SeedableRng;
    use rand_pcg::Pcg64Mcg;

    const B: usize = 24;
    const DIM: usize = 20;
    const CLASSES: usize = 3;

    fn config(sets: &[&str]) -> TrainConfig {
        let mut b = ConfigBuilder::new();
        for s in [
            "model.g_width=32",
            "model.d_width=48",
            "model.latent=5",
            "model.d_activation=leaky-relu",
        ]
        .iter()
        .chain(sets)
        {
            b = b.set(s).unwrap();
        }
        b.build().unwrap()
    }

    fn nets(cfg: &TrainConfig, classes: usize, rng: &mut Pcg64Mcg) -> (Generator, Discriminator) {
        let dev = Device::flex().autodiff();
        let g = Generator::new(&cfg.model, classes, DIM, None, rng, &dev).unwrap();
        let d = Discriminator::new(&cfg.model, DIM, classes, rng, &dev);
        (g, d)
    }

    fn labels(rng: &mut Pcg64Mcg, classes: usize) -> Option<Vec<usize>> {
        (classes > 0).then(|| {
            (0..B)
                .map(|_| rand::RngExt::random_range(rng, 0..classes))
                .collect()
        })
    }

    /// Every gradient of `m` in `a` against `b`: within `tol` of the largest |value|, per tensor.
    fn assert_close<M: Module>(m: &M, a: &GradientsParams, b: &GradientsParams, what: &str) {
        struct Cmp<'a> {
            a: &'a GradientsParams,
            b: &'a GradientsParams,
            what: &'a str,
            seen: usize,
        }
        impl ModuleVisitor for Cmp<'_> {
            fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
                let get = |g: &GradientsParams| {
                    g.get::<D>(p.id)
                        .unwrap_or_else(|| panic!("{}: no gradient for {:?}", self.what, p.id))
                        .into_data()
                        .try_to_vec::<f32>()
                        .unwrap()
                };
                let (x, y) = (get(self.a), get(self.b));
                assert_eq!(x.len(), y.len());
                let scale = y.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                assert!(scale > 0.0, "{}: a zero gradient tests nothing", self.what);
                let worst = x
                    .iter()
                    .zip(&y)
                    .fold(0.0f32, |m, (p, q)| m.max((p - q).abs()));
                assert!(
                    worst <= 2e-5 * scale,
                    "{}: gradient of a {:?} tensor differs by {worst} (largest {scale})",
                    self.what,
                    p.val().dims()
                );
                self.seen += 1;
            }
        }
        let mut c = Cmp {
            a,
            b,
            what,
            seen: 0,
        };
        m.visit(&mut c);
        assert!(c.seen >= 2, "{what}: only {} parameters compared", c.seen);
    }

    /// The D update of `Trainer::d_update`'s graph against `d_gradients`, loss and outputs too.
    fn check_d(sets: &[&str], classes: usize) {
        let cfg = config(sets);
        let mut rng = Pcg64Mcg::seed_from_u64(7);
        let (g, d) = nets(&cfg, classes, &mut rng);
        assert!(
            applies(&cfg, &g, &d, &Device::flex().autodiff()),
            "{sets:?}"
        );
        let dev = Device::flex().autodiff();
        let real = normal_tensor(&mut rng, B, DIM, 1.0, &dev);
        let fake = normal_tensor(&mut rng, B, DIM, 1.0, &dev);
        let cls = labels(&mut rng, classes);
        let y = cls.as_ref().map(|c| one_hot(c, classes, &dev));
        let obj = Objective::of(&cfg);

        let w = d.weights(false);
        let y2 = y
            .as_ref()
            .map(|y| Tensor::cat(vec![y.clone(), y.clone()], 0));
        let both = Tensor::cat(vec![real.clone(), fake.clone()], 0);
        let (out, gx) = d.forward_with_input_grad_of_rows(&w, both, y2, 0..2 * B);
        let (r, f) = (out.clone().narrow(0, 0, B), out.narrow(0, B, B));
        let mut loss = d_loss(obj.kind, r.clone(), f.clone(), obj.label_smoothing);
        if obj.r1 > 0.0 {
            loss = loss + grad_sq_penalty(gx.clone().narrow(0, 0, B), obj.r1);
        }
        if obj.r2 > 0.0 {
            loss = loss + grad_sq_penalty(gx.narrow(0, B, B), obj.r2);
        }
        let want_loss = loss.clone().into_scalar::<f64>();
        let want = GradientsParams::from_grads(loss.backward(), &d);

        let (got, terms) = d_gradients(&d, real.inner(), fake.inner(), cls.as_deref(), obj);
        assert_close(&d, &got, &want, &format!("D {sets:?}"));
        assert!(
            (terms.loss - want_loss).abs() <= 1e-5 * want_loss.abs().max(1.0),
            "{sets:?}: loss {} against {want_loss}",
            terms.loss
        );
        let r = r.inner().into_data().try_to_vec::<f32>().unwrap();
        for (a, b) in terms.r.iter().zip(&r) {
            assert!(
                (a - b).abs() <= 1e-5 * b.abs().max(1.0),
                "D(real) {a} against {b}"
            );
        }
    }

    /// G's update through the graph (`Trainer::step`) against `g_gradients`.
    fn check_g(sets: &[&str], classes: usize) {
        let cfg = config(sets);
        let mut rng = Pcg64Mcg::seed_from_u64(11);
        let (g, d) = nets(&cfg, classes, &mut rng);
        let dev = Device::flex().autodiff();
        let mut z = normal_tensor(&mut rng, B, cfg.model.latent, 1.0, &dev);
        let cls = labels(&mut rng, classes);
        let y = cls.as_ref().map(|c| one_hot(c, classes, &dev));
        if let Some(y) = &y {
            z = Tensor::cat(vec![z, y.clone()], 1);
        }
        let fake = g.forward(z.clone(), GenMode::inference());
        let frozen = d.clone().no_grad();
        let w = frozen.weights(false);
        let f = frozen.forward(&w, fake, y);
        let loss = g_loss(cfg.loss.kind, f.clone(), f);
        let want_loss = loss.clone().into_scalar::<f64>();
        let want = GradientsParams::from_grads(loss.backward(), &g);
        let (got, got_loss) = g_gradients(&g, &d, z.inner(), cls.as_deref(), cfg.loss.kind);
        assert_close(&g, &got, &want, &format!("G {sets:?}"));
        assert!(
            (got_loss - want_loss).abs() <= 1e-5 * want_loss.abs().max(1.0),
            "{sets:?}: G loss {got_loss} against {want_loss}"
        );
    }

    #[test]
    fn d_gradients_are_autodiffs_for_every_loss_and_penalty() {
        check_d(&["penalty.r1=10"], CLASSES);
        check_d(&["penalty.r1=10"], 0);
        check_d(&["penalty.r2=5", "loss.label_smoothing=0.1"], CLASSES);
        check_d(
            &["penalty.r1=3", "penalty.r2=7", "loss.kind=hinge"],
            CLASSES,
        );
        check_d(&["loss.kind=least-squares", "model.d_activation=relu"], 0);
        check_d(&["loss.kind=wasserstein", "model.d_depth=1"], CLASSES);
        check_d(
            &[
                "loss.kind=minimax",
                "penalty.r1=1",
                "model.leaky_slope=0.05",
            ],
            2,
        );
    }

    #[test]
    fn g_gradients_are_autodiffs_for_every_loss() {
        check_g(&[], CLASSES);
        check_g(&[], 0);
        check_g(&["loss.kind=minimax"], CLASSES);
        check_g(&["loss.kind=wasserstein", "model.g_depth=1"], 0);
        check_g(&["loss.kind=least-squares", "model.g_depth=0"], CLASSES);
        check_g(&["loss.kind=hinge", "model.g_activation=leaky-relu"], 2);
    }

    /// The fakes of a D update are `Generator::forward`'s bit for bit.
    #[test]
    fn generate_is_the_generators_forward_bit_for_bit() {
        for sets in [
            &[][..],
            &["model.g_activation=leaky-relu", "model.g_depth=2"],
        ] {
            let cfg = config(sets);
            let mut rng = Pcg64Mcg::seed_from_u64(3);
            let (g, _) = nets(&cfg, CLASSES, &mut rng);
            let dev = Device::flex();
            let z = normal_tensor(&mut rng, B, cfg.model.latent + CLASSES, 1.0, &dev);
            let want = g.valid().forward(z.clone(), GenMode::inference());
            let bits = |t: Tensor<2>| -> Vec<u32> {
                let v = t.into_data().try_to_vec::<f32>().unwrap();
                v.iter().map(|x| x.to_bits()).collect()
            };
            assert_eq!(bits(generate(&g, z)), bits(want), "{sets:?}");
        }
    }

    /// The default recipes take the hand-written step; what it cannot do goes through the graph.
    #[test]
    fn applies_to_the_default_recipes_and_not_beyond() {
        let dev = Device::flex().autodiff();
        let mut rng = Pcg64Mcg::seed_from_u64(1);
        let series = ConfigBuilder::new()
            .recipe_for(crate::config::DEFAULT_RECIPE, true)
            .unwrap()
            .build()
            .unwrap();
        let (g, d) = nets(&series, 4, &mut rng);
        assert!(applies(&series, &g, &d, &dev));
        for sets in [
            &["train.fused_step=false"][..],
            &["penalty.gp=10"],
            &["model.spectral_norm=true"],
            &["model.d_minibatch_std=true"],
            &["model.g_batchnorm=true"],
            &["model.g_noise=true"],
            &["model.d_activation=tanh"],
            &["loss.kind=relativistic-average"],
            &["regularize.l2_d=0.01"],
            &["regularize.instance_noise=0.1"],
        ] {
            let cfg = config(sets);
            let (g, d) = nets(&cfg, 0, &mut rng);
            assert!(!applies(&cfg, &g, &d, &dev), "{sets:?}");
        }
        let cfg = config(&[]);
        let (g, d) = nets(&cfg, 0, &mut rng);
        assert!(applies(&cfg, &g, &d, &dev));
    }

    /// A remedy that adds instance noise mid-run (the watchdog's, for a vanishing D) sends the next
    /// update through the graph, which takes the noise.
    #[test]
    fn a_setting_changed_mid_run_is_seen_at_the_next_update() {
        use crate::train::{TrainData, Trainer};
        let points: Vec<f32> = (0..400).map(|i| (i as f32 * 0.37).sin()).collect();
        let data = TrainData::points(points, 2);
        let mut t = Trainer::new(config(&[]), data, Device::flex().autodiff()).unwrap();
        assert!(t.by_hand());
        t.step();
        t.cfg.regularize.instance_noise = 0.1;
        assert!(!t.by_hand());
        t.step();
        t.cfg.regularize.instance_noise = 0.0;
        assert!(t.by_hand());
    }
}
