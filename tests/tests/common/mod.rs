//! Helpers the end-to-end tests share: latents, burn tensors, and small generators of every shape.
#![allow(dead_code)]

use burn::tensor::{Device, Tensor, TensorData};
use keel_runtime::generate::latent;
use keel_trainer::artifacts::GeneratorMeta;
use keel_trainer::config::ConfigBuilder;
use keel_trainer::data::Normalizer;
use keel_trainer::model::generator::GenMode;
use keel_trainer::model::Generator;
use rand::SeedableRng;

pub fn latents(rows: usize, width: usize, seed: u64) -> Vec<f32> {
    let mut z = vec![0f32; rows * width];
    for (i, r) in z.chunks_exact_mut(width).enumerate() {
        latent(seed, 0, i as u64, r);
    }
    z
}

pub fn tensor(v: &[f32], rows: usize, device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(v.to_vec(), [rows, v.len() / rows]), device)
}

pub fn values(t: Tensor<2>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

pub fn meta(output_dim: usize, classes: &[&str]) -> GeneratorMeta {
    series_meta(output_dim, classes, None)
}

/// Test metadata; `shape` `[channels, length]` for series (channel-major, `output_dim` values).
pub fn series_meta(
    output_dim: usize,
    classes: &[&str],
    shape: Option<[usize; 2]>,
) -> GeneratorMeta {
    // One statistic per channel for series, per column for tables.
    let stats = shape.map_or(output_dim, |[c, _]| c);
    GeneratorMeta {
        dataset: "test".into(),
        output_dim,
        columns: (0..output_dim).map(|i| format!("c{i}")).collect(),
        classes: classes.iter().map(|s| s.to_string()).collect(),
        normalizer: Normalizer {
            mean: (0..stats).map(|i| i as f64).collect(),
            std: vec![2.0; stats],
            span: output_dim / stats,
        },
        mixture: None,
        shape,
        source: String::new(),
        seed: 5,
        step: 0,
    }
}

/// A generator with moved BatchNorm statistics, so inference-mode BN is not the identity.
pub fn generator(
    settings: &[&str],
    classes: usize,
    output_dim: usize,
) -> (keel_trainer::config::TrainConfig, Generator) {
    series_generator(settings, classes, output_dim, None)
}

/// [`generator`] for series of `shape` (the conv generator needs it).
pub fn series_generator(
    settings: &[&str],
    classes: usize,
    output_dim: usize,
    shape: Option<[usize; 2]>,
) -> (keel_trainer::config::TrainConfig, Generator) {
    let mut b = ConfigBuilder::new().recipe("stable").unwrap();
    for s in settings {
        b = b.set(s).unwrap();
    }
    let cfg = b.build().unwrap();
    let device = Device::flex();
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(3);
    let g = Generator::new(&cfg.model, classes, output_dim, shape, &mut rng, &device).unwrap();
    for step in 0..5 {
        let z = latents(32, g.input_dim, 100 + step);
        let train = GenMode {
            train: true,
            update_stats: true,
            noise: None,
        };
        let _ = g.forward(tensor(&z, 32, &device), train);
    }
    (cfg, g)
}

/// Config settings, classes, and `[channels, length]` for series.
pub type Shape = (&'static [&'static str], usize, Option<[usize; 2]>);

/// The generator shapes every export and quantization test covers: BatchNorm + LeakyReLU, tanh,
/// noise layers (training-only), a conditional one (3 classes), and a conditional conv generator
/// with BatchNorm, LeakyReLU and noise whose blocks overshoot the length (12 steps cropped to 10).
/// The last field is the series shape (`None`: 3 plain columns).
pub const SHAPES: [Shape; 5] = [
    (
        &[
            "model.g_batchnorm=true",
            "model.g_activation=\"leaky-relu\"",
        ],
        0,
        None,
    ),
    (
        &[
            "model.g_activation=\"tanh\"",
            "model.g_depth=2",
            "model.latent=8",
        ],
        0,
        None,
    ),
    (&["model.g_noise=true", "model.g_width=64"], 0, None),
    (&["model.g_batchnorm=true", "model.latent=4"], 3, None),
    (
        &[
            "model.g_kind=\"conv\"",
            "model.g_batchnorm=true",
            "model.g_noise=true",
            "model.g_activation=\"leaky-relu\"",
            "model.g_conv_channels=8",
            "model.g_conv_blocks=2",
            "model.latent=6",
        ],
        3,
        Some([3, 10]),
    ),
];

/// Index in `SHAPES` of the conditional conv generator.
pub const CONV_SHAPE: usize = 4;

/// `g` exported with test metadata (`output_dim` columns, the first `classes` of walk/run/jump).
pub fn export(
    cfg: &keel_trainer::config::TrainConfig,
    g: &Generator,
    output_dim: usize,
    classes: usize,
) -> Vec<u8> {
    let names = ["walk", "run", "jump"];
    let shape = g.conv.as_ref().map(|head| [head.dims[2], head.dims[3]]);
    let m = series_meta(output_dim, &names[..classes], shape);
    let info = keel_trainer::export::ExportInfo {
        meta: &m,
        config: cfg,
        recipe: "stable",
        metrics: serde_json::Value::Null,
    };
    keel_trainer::export::export_generator(g, &info).unwrap()
}

/// `SHAPES[i]` built and exported (3 output columns, or its series shape) to `dir/g{i}.onnx`.
pub fn exported_shape(
    i: usize,
    dir: &std::path::Path,
) -> (
    keel_trainer::config::TrainConfig,
    Generator,
    std::path::PathBuf,
) {
    let (settings, classes, shape) = SHAPES[i];
    let dim = shape.map_or(3, |[c, t]| c * t);
    let (cfg, g) = series_generator(settings, classes, dim, shape);
    let path = dir.join(format!("g{i}.onnx"));
    std::fs::write(&path, export(&cfg, &g, dim, classes)).unwrap();
    (cfg, g, path)
}
