//! `keel-run quantize`: an exported generator → an int8 `.kq8` for the firmware, with the error it
//! costs measured on held-out latents by the firmware library's own code.

mod gptq;
mod graph;
mod int8;
mod modes;

pub use graph::Program;
pub use int8::{Affine, QConv, QDense, QLayer, QProgram};
pub use modes::{mode_score, ModeScore};

use crate::generate::latent;
use crate::meta::Denorm;
use crate::Generator;
use anyhow::{anyhow, bail, Context, Result};
use keel_firmware::kq8::{self, ConvSpec, DenseSpec, LayerSpec, Spec};
use keel_firmware::{Arena, Kernel, Model};
use serde::Serialize;

#[derive(Debug, Clone)]
pub struct Options {
    /// Calibration latents per class.
    pub calib: usize,
    /// Held-out samples per class for the error report.
    pub eval: usize,
    pub seed: u64,
    /// Round weights with GPTQ (else to nearest: the plain scheme, for comparison).
    pub gptq: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct LayerReport {
    pub layer: String,
    pub macs: usize,
    pub sqnr_db: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub source: String,
    pub bytes: usize,
    /// Multiply-accumulates per sample as the device executes them (padded).
    pub macs: usize,
    pub calib_per_class: usize,
    pub eval_per_class: usize,
    /// Largest |float program − tract| on calibration latents (the graph was read right).
    pub float_vs_tract: f32,
    /// Cumulative SQNR after each int8 layer, against the float model on the same latents.
    pub layers: Vec<LayerReport>,
    pub sqnr_db: f64,
    /// End-to-end SQNR without the 1 % largest output errors: a generator with separate modes has
    /// a few samples between two modes that any perturbation moves to the other one; this shows
    /// how much of the error they are.
    pub sqnr_db_without_top_1pct: f64,
    /// Mode coverage of float and int8 samples, where the dataset knows its modes.
    pub modes_float: Option<ModeScore>,
    pub modes_int8: Option<ModeScore>,
}

/// Quantizes `g`; returns the `.kq8` bytes (already parsed back by the firmware's reader) and the report.
pub fn quantize_generator(g: &Generator, opt: &Options) -> Result<(Vec<u8>, Report)> {
    if opt.calib == 0 || opt.eval == 0 {
        bail!("--calib and --eval must be at least 1");
    }
    let meta = &g.meta;
    let (latent_dim, classes) = (meta.latent, meta.classes.len());
    let prog = Program::from_onnx(&g.proto, latent_dim, classes)?;

    // Calibration latents, every class; the float program must agree with tract on them.
    let rows: Vec<(usize, Vec<f32>)> = (0..classes.max(1))
        .flat_map(|c| (0..opt.calib).map(move |i| (c, i)))
        .map(|(c, i)| {
            let mut z = vec![0f32; latent_dim];
            latent(opt.seed, c, i as u64, &mut z);
            (c, z)
        })
        .collect();
    let class_of = |c: usize| (classes > 0).then_some(c);
    let float_vs_tract = check_against_tract(g, &prog, &rows[..rows.len().min(256)])?;
    // Every stage's values on the calibration set (strided down to a bounded sample).
    let mut values: Vec<Vec<f32>> = vec![Vec::new(); prog.layers.len() + 1];
    let stride = (rows.len() / 4000).max(1);
    for (c, z) in rows.iter().step_by(stride) {
        prog.run(z, class_of(*c), |s, v| values[s].extend_from_slice(v));
    }
    if values.iter().flatten().any(|v| !v.is_finite()) {
        bail!("the float model produces NaN or infinite activations on calibration latents");
    }
    // The latent is not clipped by the error criterion: its range is the prior's own.
    let stages: Vec<Affine> = values
        .iter()
        .enumerate()
        .map(|(s, v)| {
            if s == 0 {
                Affine::from_range(
                    v.iter().copied().fold(0., f32::min),
                    v.iter().copied().fold(0., f32::max),
                )
            } else {
                Affine::calibrate(v)
            }
        })
        .collect();
    let q = int8::quantize(&prog, &stages, &values, opt.gptq);

    let provenance = serde_json::json!({
        "producer": format!("keel-run {}", env!("CARGO_PKG_VERSION")),
        "dependencies": env!("KEEL_DEP_VERSIONS"),
        "source": g.path.file_name().map(|f| f.to_string_lossy().into_owned()),
        "source_producer": meta.producer,
        "dataset": meta.dataset, "recipe": meta.recipe, "train_seed": meta.seed, "step": meta.step,
        "classes": meta.classes, "columns": meta.column_names(),
        "calibration": { "per_class": opt.calib, "seed": opt.seed },
        "weight_rounding": if opt.gptq { "gptq" } else { "nearest" },
    });
    let bytes = write_kq8(&q, g, provenance.to_string().as_bytes())?;
    let model =
        Model::parse(&bytes).map_err(|e| anyhow!("the written .kq8 does not read back: {e}"))?;

    let mut report = Report {
        source: g.path.display().to_string(),
        bytes: bytes.len(),
        macs: model.macs,
        calib_per_class: opt.calib,
        eval_per_class: opt.eval,
        float_vs_tract,
        layers: Vec::new(),
        sqnr_db: 0.0,
        sqnr_db_without_top_1pct: 0.0,
        modes_float: None,
        modes_int8: None,
    };
    evaluate(&model, &q, &prog, g, opt, &mut report)?;
    Ok((bytes, report))
}

/// Largest difference between the float program and tract's run of the graph.
fn check_against_tract(g: &Generator, prog: &Program, rows: &[(usize, Vec<f32>)]) -> Result<f32> {
    let classes = g.meta.classes.len();
    let batch = rows.len();
    let z: Vec<f32> = rows.iter().flat_map(|r| r.1.iter().copied()).collect();
    let onehot = (classes > 0).then(|| {
        let mut v = vec![0f32; batch * classes];
        rows.iter()
            .enumerate()
            .for_each(|(i, r)| v[i * classes + r.0] = 1.0);
        v
    });
    let plan = g.plan(batch)?;
    let want = g.run(&plan, batch, z, onehot)?;
    let n = g.meta.sample_len();
    let mut worst = 0f32;
    for (i, (c, z)) in rows.iter().enumerate() {
        let got = prog.run(z, (classes > 0).then_some(*c), |_, _| {});
        for (a, b) in got.iter().zip(&want[i * n..(i + 1) * n]) {
            worst = worst.max((a - b).abs());
        }
    }
    let scale = want.iter().fold(1f32, |m, v| m.max(v.abs()));
    if worst > 1e-4 * scale {
        bail!("internal error: the graph as read for quantization differs from tract's run by {worst} (please report)");
    }
    Ok(worst)
}

fn write_kq8(q: &QProgram, g: &Generator, provenance: &[u8]) -> Result<Vec<u8>> {
    let meta = &g.meta;
    let channels = meta.output_shape[0];
    let length = meta.sample_len() / channels;
    let denorm: Vec<(f32, f32)> = (0..channels)
        .map(|c| match &meta.denorm {
            Denorm::MeanStd { mean, std } => (std[c] as f32, mean[c] as f32),
            Denorm::MinMax { min, max } => {
                let half = (max[c] - min[c]) / 2.0;
                (half as f32, (min[c] + half) as f32)
            }
        })
        .collect();
    let cdf = int8::latent_cdf(q.input);
    let layers: Vec<LayerSpec> = q
        .layers
        .iter()
        .map(|l| match l {
            QLayer::Dense(d) => LayerSpec::Dense(dense_spec(d)),
            QLayer::Conv(c) => {
                let g = &c.geometry;
                LayerSpec::Conv(ConvSpec {
                    in_ch: g.in_ch,
                    in_len: g.in_len,
                    up: g.up,
                    kernel: g.kernel,
                    out_ch: g.out_ch,
                    out_len: g.out_len,
                    in_zp: c.in_zp,
                    in_time_major: c.in_time_major,
                    out_time_major: c.out_time_major,
                    dense: dense_spec(&c.dense),
                })
            }
            QLayer::Table { width, table, .. } => LayerSpec::Table {
                width: *width,
                table,
            },
        })
        .collect();
    let too_big = |what| {
        anyhow!(
            "{what} does not fit the .kq8 format (max {})",
            kq8::MAX_WIDTH
        )
    };
    let spec = Spec {
        latent: u16::try_from(meta.latent).map_err(|_| too_big("latent"))?,
        classes: u16::try_from(meta.classes.len()).map_err(|_| too_big("classes"))?,
        channels: u16::try_from(channels).map_err(|_| too_big("channels"))?,
        length: u16::try_from(length).map_err(|_| too_big("length"))?,
        input_zp: q.input.zp,
        output_zp: q.output().zp,
        input_scale: q.input.scale,
        output_scale: q.output().scale,
        cdf: &cdf,
        denorm: &denorm,
        meta: provenance,
        layers: &layers,
    };
    let mut out = Vec::new();
    kq8::write(&mut out, &spec).map_err(|e| anyhow!("cannot lay out the .kq8: {e}"))?;
    Ok(out)
}

/// A convolution for reports: `[in_ch, in_len, up, kernel, out_ch, out_len]`.
pub fn conv_name([in_ch, in_len, up, k, out_ch, out_len]: [usize; 6], relu: bool) -> String {
    let up = if up > 1 {
        format!(" ↑{up}")
    } else {
        String::new()
    };
    let relu = if relu { " + relu" } else { "" };
    format!("conv {in_ch}×{in_len}{up} → {out_ch}×{out_len} k{k}{relu}")
}

fn dense_spec(d: &QDense) -> DenseSpec<'_> {
    DenseSpec {
        in_dim: d.in_dim,
        out_dim: d.out_dim,
        relu: d.relu,
        out_zp: d.out.zp,
        weights: &d.weights,
        bias: &d.bias,
        mult: &d.mult,
        shift: &d.shift,
    }
}

/// Per-layer and end-to-end SQNR on held-out latents, and mode scores where the data has modes.
fn evaluate(
    model: &Model,
    q: &QProgram,
    prog: &Program,
    g: &Generator,
    opt: &Options,
    r: &mut Report,
) -> Result<()> {
    let meta = &g.meta;
    let classes = meta.classes.len();
    let mut buffers = HostArena::for_model(model);
    let mut arena = buffers.arena();
    let eval_seed = opt.seed.wrapping_add(1);
    let n_layers = q.layers.len();
    let (mut signal, mut noise) = (vec![0f64; n_layers], vec![0f64; n_layers]);
    let mut int8_real = Vec::new();
    let mut output_errors = Vec::new();
    let mut float_real = Vec::new();
    let out_len = meta.sample_len();
    for c in 0..classes.max(1) {
        for i in 0..opt.eval {
            let mut stages: Vec<Vec<i8>> = vec![Vec::new(); n_layers + 1];
            let out = model
                .generate_observed(
                    c as u16,
                    eval_seed,
                    i as u32,
                    &mut arena,
                    Kernel::best(),
                    &mut |s: usize, v: &[i8]| stages[s] = v.to_vec(),
                )
                .map_err(|e| anyhow!("int8 inference failed: {e}"))?;
            for (k, v) in out.iter().enumerate() {
                int8_real.push(model.to_real(k / (out_len / meta.output_shape[0]), *v));
            }
            let z: Vec<f32> = stages[0].iter().map(|&v| q.input.dequantize(v)).collect();
            let mut floats: Vec<Vec<f32>> = vec![Vec::new(); prog.layers.len() + 1];
            prog.run(&z, (classes > 0).then_some(c), |s, v| {
                floats[s] = v.to_vec()
            });
            for (j, layer) in q.layers.iter().enumerate() {
                let (out, real) = match layer {
                    QLayer::Dense(d) => (d.out, d.real_out),
                    QLayer::Conv(c) => (c.dense.out, c.geometry.out_width()),
                    QLayer::Table { out, real, .. } => (*out, *real),
                };
                // The device keeps some activations time-major; the float program channel-major.
                let mut stage = stages[j + 1][..real].to_vec();
                if let Some((ch, len)) = q.time_major(j) {
                    stage = (0..ch * len)
                        .map(|i| stages[j + 1][(i % len) * ch + i / len])
                        .collect();
                }
                for (f, qv) in floats[q.float_stage[j]].iter().zip(&stage) {
                    signal[j] += (*f as f64).powi(2);
                    let e = (*f as f64 - out.dequantize(*qv) as f64).powi(2);
                    noise[j] += e;
                    if j + 1 == n_layers {
                        output_errors.push(e);
                    }
                }
            }
            // A float sample from the true normal prior, for the distribution comparison.
            let mut zf = vec![0f32; meta.latent];
            latent(eval_seed, c, i as u64, &mut zf);
            float_real.extend(prog.run(&zf, (classes > 0).then_some(c), |_, _| {}));
        }
    }
    meta.denorm
        .apply(&mut float_real, out_len / meta.output_shape[0]);
    let db = |s: f64, n: f64| {
        if n == 0.0 {
            f64::INFINITY
        } else {
            10.0 * (s / n).log10()
        }
    };
    for (j, layer) in q.layers.iter().enumerate() {
        let (name, macs) = match layer {
            QLayer::Dense(d) => (
                format!(
                    "dense {}→{}{}",
                    d.real_in,
                    d.real_out,
                    if d.relu { " + relu" } else { "" }
                ),
                d.real_in * d.real_out,
            ),
            QLayer::Conv(c) => {
                let g = &c.geometry;
                let dims = [g.in_ch, g.in_len, g.up, g.kernel, g.out_ch, g.out_len];
                (
                    conv_name(dims, c.dense.relu),
                    g.out_len * g.out_ch * g.in_ch * g.kernel,
                )
            }
            QLayer::Table { what, real, .. } => (format!("table {what} ×{real}"), 0),
        };
        r.layers.push(LayerReport {
            layer: name,
            macs,
            sqnr_db: db(signal[j], noise[j]),
        });
    }
    r.sqnr_db = r.layers.last().map_or(0.0, |l| l.sqnr_db);
    output_errors.sort_by(|a, b| b.total_cmp(a));
    let kept: f64 = output_errors[output_errors.len() / 100..].iter().sum();
    r.sqnr_db_without_top_1pct = db(signal[n_layers - 1], kept);
    if let (Some(modes), 2) = (&meta.modes, out_len) {
        r.modes_float = Some(mode_score(&float_real, modes));
        r.modes_int8 = Some(mode_score(&int8_real, modes));
    }
    Ok(())
}

/// Owned activation buffers for running a `.kq8` on the host with the firmware library.
pub struct HostArena {
    a: Vec<i8>,
    b: Vec<i8>,
    x16: Vec<u32>,
}

impl HostArena {
    pub fn for_model(m: &Model) -> HostArena {
        HostArena {
            a: vec![0; m.max_width],
            b: vec![0; m.max_width],
            x16: vec![0; m.max_in / 2],
        }
    }

    pub fn arena(&mut self) -> Arena<'_> {
        Arena {
            a: &mut self.a,
            b: &mut self.b,
            x16: &mut self.x16,
        }
    }
}

/// Reads a `.kq8` file and checks it with the firmware's reader; the error names the file.
pub fn read_kq8(path: &std::path::Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Model::parse(&bytes).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    Ok(bytes)
}
