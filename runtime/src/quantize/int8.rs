//! Float program + calibrated ranges → the int8 program, in the TFLite / CMSIS-NN scheme: weights
//! symmetric per output channel, activations asymmetric per tensor, i32 biases with the input zero
//! point folded in, Q31 multiplier + shift requantization, element-wise maps as 256-entry tables.

use super::graph::{Expr, Layer, Program};
use keel_firmware::kernels::requant::quantize_multiplier;
use keel_firmware::kq8::CDF_ENTRIES;

/// `real ≈ (q − zp) · scale`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Affine {
    pub scale: f32,
    pub zp: i8,
}

impl Affine {
    /// The asymmetric int8 mapping of `[min, max]`, widened to hold 0 exactly.
    pub fn from_range(min: f32, max: f32) -> Affine {
        let (lo, hi) = (min.min(0.0), max.max(0.0));
        let scale = ((hi - lo) / 255.0).max(1e-8);
        let zp = (-128.0 - lo / scale).round().clamp(-128.0, 127.0) as i8;
        Affine { scale, zp }
    }

    /// The mapping of `values` that minimises the squared quantization error: min/max, or a
    /// narrower range when clipping a few outliers buys more resolution for the rest.
    pub fn calibrate(values: &[f32]) -> Affine {
        let (min, max) = values
            .iter()
            .fold((0f32, 0f32), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        let mut best = (f64::INFINITY, Affine::from_range(min, max));
        for step in 0..=24 {
            let f = 1.0 - step as f32 * 0.03;
            for (lo, hi) in [(min * f, max * f), (min, max * f), (min * f, max)] {
                let a = Affine::from_range(lo, hi);
                let err: f64 = values
                    .iter()
                    .map(|&v| (v - a.dequantize(a.quantize(v))) as f64)
                    .map(|e| e * e)
                    .sum();
                if err < best.0 {
                    best = (err, a);
                }
            }
        }
        best.1
    }

    pub fn quantize(&self, v: f32) -> i8 {
        (v / self.scale + self.zp as f32)
            .round()
            .clamp(-128.0, 127.0) as i8
    }

    pub fn dequantize(&self, q: i8) -> f32 {
        (q as i32 - self.zp as i32) as f32 * self.scale
    }
}

/// An int8 dense layer in row-major, padded form (the `.kq8` writer blocks it).
#[derive(Debug, Clone)]
pub struct QDense {
    pub in_dim: usize,
    pub out_dim: usize,
    /// Unpadded widths, for reports and the float comparison.
    pub real_in: usize,
    pub real_out: usize,
    pub relu: bool,
    pub out: Affine,
    pub weights: Vec<i8>,
    pub bias: Vec<i32>,
    pub mult: Vec<i32>,
    pub shift: Vec<i8>,
}

/// An int8 convolution: geometry, its input's zero point (the padding) and its weights as a dense
/// layer over one `in_ch × kernel` window.
#[derive(Debug, Clone)]
pub struct QConv {
    pub geometry: super::graph::Conv,
    pub in_zp: i8,
    /// Device layouts: time-major between two convolutions (see `kq8::FLAG_IN_TIME_MAJOR`).
    pub in_time_major: bool,
    pub out_time_major: bool,
    pub dense: QDense,
}

#[derive(Debug, Clone)]
pub enum QLayer {
    Dense(QDense),
    Conv(QConv),
    Table {
        width: usize,
        real: usize,
        out: Affine,
        table: [i8; 256],
        what: String,
    },
}

/// The int8 program and, for each of its layers, the float stage it approximates.
#[derive(Debug, Clone)]
pub struct QProgram {
    pub input: Affine,
    pub layers: Vec<QLayer>,
    pub float_stage: Vec<usize>,
}

impl QProgram {
    /// `(channels, length)` when layer `j`'s output is time-major on the device (a convolution
    /// feeding another, and the element-wise tables between them).
    pub fn time_major(&self, j: usize) -> Option<(usize, usize)> {
        match self.layers.get(j)? {
            QLayer::Conv(c) if c.out_time_major => Some((c.geometry.out_ch, c.geometry.out_len)),
            QLayer::Table { .. } if j > 0 => self.time_major(j - 1),
            _ => None,
        }
    }

    /// Keeps activations between two convolutions time-major when the producer's channels come
    /// in whole groups of 4 (its padded step is then exactly its outputs).
    fn choose_layouts(&mut self) {
        for i in 0..self.layers.len() {
            let QLayer::Conv(c) = &self.layers[i] else {
                continue;
            };
            let whole = c.geometry.out_ch % 4 == 0;
            let next = (i + 1..self.layers.len())
                .find(|&j| !matches!(self.layers[j], QLayer::Table { .. }));
            if let Some(j) = next.filter(|&j| whole && matches!(self.layers[j], QLayer::Conv(_))) {
                if let QLayer::Conv(c) = &mut self.layers[i] {
                    c.out_time_major = true;
                }
                if let QLayer::Conv(c) = &mut self.layers[j] {
                    c.in_time_major = true;
                }
            }
        }
    }

    pub fn output(&self) -> Affine {
        match self.layers.last() {
            Some(QLayer::Dense(d)) | Some(QLayer::Conv(QConv { dense: d, .. })) => d.out,
            Some(QLayer::Table { out, .. }) => *out,
            None => self.input,
        }
    }
}

fn pad4(n: usize) -> usize {
    n.div_ceil(4) * 4
}

/// Quantizes `prog` given each float stage's int8 mapping and calibration values: stage 0 is the
/// latent, `k + 1` the output of float layer `k`. A ReLU straight after a dense layer is fused
/// into it. Weights are rounded by GPTQ against the (fake-quantized) calibration inputs when
/// `gptq`, else to nearest.
pub fn quantize(prog: &Program, stages: &[Affine], values: &[Vec<f32>], gptq: bool) -> QProgram {
    let affine = |s: usize| stages[s];
    let input = affine(0);
    let mut q = QProgram {
        input,
        layers: Vec::new(),
        float_stage: Vec::new(),
    };
    let mut x = input; // the current activation's mapping
    let mut width = prog.latent; // its values, and as the device holds it (dense pads to 4)
    let mut held = pad4(width);
    let mut k = 0;
    while k < prog.layers.len() {
        match &prog.layers[k] {
            Layer::Dense(d) => {
                let relu = matches!(prog.layers.get(k + 1), Some(Layer::Map(Expr::Relu(e))) if **e == Expr::X);
                let stage = if relu { k + 2 } else { k + 1 };
                let out = affine(stage);
                // What this layer sees on the device: its input after int8 rounding (none: GPTQ
                // falls back to rounding to nearest).
                let seen: Vec<f32> = match gptq {
                    true => values[k]
                        .iter()
                        .map(|&v| x.dequantize(x.quantize(v)))
                        .collect(),
                    false => Vec::new(),
                };
                q.layers
                    .push(QLayer::Dense(dense(prog, d, x, out, relu, &seen)));
                q.float_stage.push(stage);
                x = out;
                width = d.out_dim;
                held = pad4(width);
                k = stage;
            }
            Layer::Conv(c) => {
                let relu = matches!(prog.layers.get(k + 1), Some(Layer::Map(Expr::Relu(e))) if **e == Expr::X);
                let stage = if relu { k + 2 } else { k + 1 };
                let out = affine(stage);
                // The weights of one window as a dense layer, tap-major: input j·pad4(in_ch) + c.
                let chp = pad4(c.in_ch);
                let mut w = vec![0f32; c.out_ch * c.kernel * chp];
                for o in 0..c.out_ch {
                    for ch in 0..c.in_ch {
                        for j in 0..c.kernel {
                            w[(o * c.kernel + j) * chp + ch] =
                                c.w[(o * c.in_ch + ch) * c.kernel + j];
                        }
                    }
                }
                let window = super::graph::Dense {
                    in_dim: c.kernel * chp,
                    out_dim: c.out_ch,
                    w,
                    b: c.b.clone(),
                    class_w: Vec::new(),
                };
                // GPTQ needs the windows, not the activations: round to nearest.
                let dense = dense(prog, &window, x, out, relu, &[]);
                q.layers.push(QLayer::Conv(QConv {
                    geometry: c.clone(),
                    in_zp: x.zp,
                    in_time_major: false,
                    out_time_major: false,
                    dense,
                }));
                q.float_stage.push(stage);
                x = out;
                width = c.out_width();
                held = width;
                k = stage;
            }
            Layer::Map(e) => {
                let out = affine(k + 1);
                let mut table = [0i8; 256];
                for (i, t) in table.iter_mut().enumerate() {
                    *t = out.quantize(e.eval(x.dequantize((i as i32 - 128) as i8)));
                }
                q.layers.push(QLayer::Table {
                    width: held,
                    real: width,
                    out,
                    table,
                    what: describe(e),
                });
                q.float_stage.push(k + 1);
                x = out;
                k += 1;
            }
        }
    }
    q.choose_layouts();
    q
}

fn dense(
    prog: &Program,
    d: &super::graph::Dense,
    x: Affine,
    out: Affine,
    relu: bool,
    inputs: &[f32],
) -> QDense {
    let (n_in, n_out) = (pad4(d.in_dim), pad4(d.out_dim));
    let rows = if d.class_w.is_empty() {
        1
    } else {
        prog.classes
    };
    let mut q = QDense {
        in_dim: n_in,
        out_dim: n_out,
        real_in: d.in_dim,
        real_out: d.out_dim,
        relu,
        out,
        weights: vec![0; n_in * n_out],
        bias: vec![0; rows * n_out],
        mult: vec![0; n_out],
        // Padded rows: multiplier 0 (they output the zero point); a shift the fast kernel takes.
        shift: vec![-2; n_out],
    };
    let scales: Vec<f32> = (0..d.out_dim)
        .map(|o| {
            let wmax = d.w[o * d.in_dim..(o + 1) * d.in_dim]
                .iter()
                .fold(0f32, |m, w| m.max(w.abs()));
            if wmax > 0.0 {
                wmax / 127.0
            } else {
                1.0
            }
        })
        .collect();
    let rounded = super::gptq::round_weights(&d.w, d.out_dim, d.in_dim, &scales, inputs);
    for o in 0..d.out_dim {
        let s_w = scales[o];
        let mut sum = 0i64;
        for (i, &v) in rounded[o * d.in_dim..(o + 1) * d.in_dim].iter().enumerate() {
            q.weights[o * n_in + i] = v;
            sum += v as i64;
        }
        let s_acc = x.scale as f64 * s_w as f64;
        for r in 0..rows {
            let mut b = d.b[o] as f64;
            if !d.class_w.is_empty() {
                b += d.class_w[r * d.out_dim + o] as f64;
            }
            // acc = Σ w·(x − zp) + b/s_acc = Σ w·x + (b/s_acc − zp·Σw)
            let folded = (b / s_acc).round() - x.zp as f64 * sum as f64;
            q.bias[r * n_out + o] = folded.clamp(i32::MIN as f64, i32::MAX as f64) as i32;
        }
        let (m, s) = quantize_multiplier(s_acc / out.scale as f64);
        q.mult[o] = m;
        q.shift[o] = s;
    }
    q
}

/// A short name for a map, for the report.
fn describe(e: &Expr) -> String {
    match e {
        Expr::Relu(_) => "relu".into(),
        Expr::Tanh(_) => "tanh".into(),
        Expr::Sigmoid(_) => "sigmoid".into(),
        Expr::Add(..) => "leaky-relu/affine".into(),
        _ => "element-wise".into(),
    }
}

/// Thresholds of the quantized standard normal for the input mapping: level `k − 128` is drawn
/// for `u` in `[t[k−1], t[k])`, its probability the normal mass between the midpoints.
pub fn latent_cdf(input: Affine) -> [u32; CDF_ENTRIES] {
    let mut t = [0u32; CDF_ENTRIES];
    for (k, v) in t.iter_mut().enumerate() {
        let edge = ((k as f64 - 128.0 - input.zp as f64) + 0.5) * input.scale as f64;
        let p = 0.5 * libm::erfc(-edge / std::f64::consts::SQRT_2);
        *v = (p * 4294967296.0).round().min(u32::MAX as f64) as u32;
    }
    t
}
