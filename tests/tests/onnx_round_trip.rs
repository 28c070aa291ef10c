//! The generator leaves burn as ONNX and comes back: the trainer's own module, tract (keel-run), and
//! the model burn-onnx's importer regenerated from the same file (build.rs) agree on the same latents.

mod common;

use burn::tensor::Device;
use common::*;
use keel_runtime::generate::latent;
use keel_trainer::artifacts::load_generator;
use keel_trainer::model::generator::GenMode;
use std::path::{Path, PathBuf};

#[allow(dead_code, clippy::all)]
mod imported_ring8 {
    include!(concat!(env!("OUT_DIR"), "/imported/ring8/generator.rs"));
}
#[allow(dead_code, clippy::all)]
mod imported_basicmotions_conv {
    include!(concat!(
        env!("OUT_DIR"),
        "/imported/basicmotions-conv/generator.rs"
    ));
}
#[allow(dead_code, clippy::all)]
mod imported_grid25_bn {
    include!(concat!(env!("OUT_DIR"), "/imported/grid25-bn/generator.rs"));
}

const TOLERANCE: f32 = 1e-5;
const BATCHES: [usize; 3] = [1, 7, 64];

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

fn max_abs(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// tract's output for `rows` rows of `z` (and one-hot `class` rows when conditional).
fn tract(
    model: &keel_runtime::Generator,
    rows: usize,
    z: &[f32],
    class: Option<&[f32]>,
) -> Vec<f32> {
    let plan = model.plan(rows).unwrap();
    model
        .run(&plan, rows, z.to_vec(), class.map(<[f32]>::to_vec))
        .unwrap()
}

#[test]
fn trainer_tract_and_reimported_burn_agree_on_the_committed_fixtures() {
    let device = Device::flex();
    for name in ["ring8", "grid25-bn"] {
        let (_, meta, g) = load_generator(&fixture(name), &device).unwrap();
        let onnx = keel_runtime::Generator::load(&fixture(name).join("generator.onnx")).unwrap();
        assert_eq!(onnx.meta.latent, g.latent());
        assert_eq!(onnx.meta.output_shape, vec![meta.output_dim]);
        for rows in BATCHES {
            let z = latents(rows, g.latent(), 11);
            let ours = values(g.forward(tensor(&z, rows, &device), GenMode::inference()));
            let imported = match name {
                "ring8" => imported_ring8::Model::default().forward(tensor(&z, rows, &device)),
                _ => imported_grid25_bn::Model::default().forward(tensor(&z, rows, &device)),
            };
            let imported = values(imported);
            let by_tract = tract(&onnx, rows, &z, None);
            let (a, b, c) = (
                max_abs(&ours, &by_tract),
                max_abs(&ours, &imported),
                max_abs(&imported, &by_tract),
            );
            eprintln!("{name} batch {rows}: burn–tract {a:.1e}, burn–imported {b:.1e}, imported–tract {c:.1e}");
            assert!(
                a <= TOLERANCE && b <= TOLERANCE && c <= TOLERANCE,
                "{name} batch {rows}"
            );
        }
    }
}

/// The conv generator fixture (BasicMotions, 4 classes, 6 × 100; BatchNorm; made by
/// `keel train --steps 600 --set model.g_kind='"conv"' --set model.g_conv_channels=8
/// --set model.latent=8 --set model.g_batchnorm=true`): its projection, upsampling (`Resize`) and
/// crop (`Gather`) come back through burn-onnx's importer and agree with the trainer and tract.
#[test]
fn conv_generator_fixture_agrees_between_trainer_tract_and_reimported_burn() {
    let device = Device::flex();
    let name = "basicmotions-conv";
    let (_, meta, g) = load_generator(&fixture(name), &device).unwrap();
    assert!(g.conv.is_some(), "the fixture is a conv generator");
    let onnx = keel_runtime::Generator::load(&fixture(name).join("generator.onnx")).unwrap();
    assert_eq!(onnx.meta.output_shape, vec![6, 100]);
    let imported = imported_basicmotions_conv::Model::default();
    for rows in BATCHES {
        let z = latents(rows, g.latent(), 13);
        let classes = meta.classes.len();
        let mut onehot = vec![0f32; rows * classes];
        for r in 0..rows {
            onehot[r * classes + r % classes] = 1.0;
        }
        let (zt, ct) = (tensor(&z, rows, &device), tensor(&onehot, rows, &device));
        let ours = values(g.forward_conditional(zt.clone(), ct.clone(), GenMode::inference()));
        let back = values(imported.forward(zt, ct));
        let by_tract = tract(&onnx, rows, &z, Some(&onehot));
        let (a, b, c) = (
            max_abs(&ours, &by_tract),
            max_abs(&ours, &back),
            max_abs(&back, &by_tract),
        );
        eprintln!("{name} batch {rows}: burn–tract {a:.1e}, burn–imported {b:.1e}, imported–tract {c:.1e}");
        assert!(
            a <= TOLERANCE && b <= TOLERANCE && c <= TOLERANCE,
            "batch {rows}"
        );
    }
}

#[test]
fn every_generator_shape_exports_and_tract_matches_burn() {
    let dir = tempfile::tempdir().unwrap();
    for (i, (settings, classes, _)) in SHAPES.iter().enumerate() {
        let (_, g, path) = exported_shape(i, dir.path());
        let onnx = keel_runtime::Generator::load(&path).unwrap();
        let device = Device::flex();
        for rows in BATCHES {
            let z = latents(rows, g.latent(), 21);
            let (ours, class) = if *classes > 0 {
                let mut onehot = vec![0f32; rows * classes];
                for r in 0..rows {
                    onehot[r * classes + r % classes] = 1.0;
                }
                let y = g.forward_conditional(
                    tensor(&z, rows, &device),
                    tensor(&onehot, rows, &device),
                    GenMode::inference(),
                );
                (values(y), Some(onehot))
            } else {
                (
                    values(g.forward(tensor(&z, rows, &device), GenMode::inference())),
                    None,
                )
            };
            let by_tract = tract(&onnx, rows, &z, class.as_deref());
            let err = max_abs(&ours, &by_tract);
            assert!(err <= TOLERANCE, "case {settings:?} batch {rows}: {err}");
        }
        // The trained module still works after export (export ran on a deep copy).
        let z = latents(2, g.input_dim, 1);
        let _ = g.forward(tensor(&z, 2, &device), GenMode::inference());
    }
}

#[test]
fn conditional_generation_by_class_name_matches_burn_in_real_units() {
    let (cfg, g) = generator(&["model.latent=4"], 3, 2);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cond.onnx");
    std::fs::write(&path, export(&cfg, &g, 2, 3)).unwrap();
    let onnx = keel_runtime::Generator::load(&path).unwrap();
    assert_eq!(
        onnx.inputs
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>(),
        ["z", "class"]
    );
    let run = onnx.meta.class_index("run").unwrap();
    assert_eq!(run, 1);
    let err = onnx.meta.class_index("swim").unwrap_err().to_string();
    assert!(err.contains("walk, run, jump"), "{err}");

    let req = keel_runtime::Request {
        n: 10,
        classes: keel_runtime::ClassChoice::All,
        seed: 9,
        batch: 4,
        threads: 2,
    };
    let mut rows: Vec<(usize, Vec<f32>)> = Vec::new();
    keel_runtime::generate(&onnx, &req, |c| {
        for (l, v) in c.labels.iter().zip(c.values.chunks_exact(2)) {
            rows.push((*l, v.to_vec()));
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(rows.len(), 30);
    let device = Device::flex();
    for (k, (label, v)) in rows.iter().enumerate() {
        assert_eq!(*label, k / 10, "classes come in order");
        let mut z = vec![0f32; 4];
        latent(9, *label, (k % 10) as u64, &mut z);
        let mut onehot = vec![0f32; 3];
        onehot[*label] = 1.0;
        let y = values(g.forward_conditional(
            tensor(&z, 1, &device),
            tensor(&onehot, 1, &device),
            GenMode::inference(),
        ));
        let real: Vec<f32> = y
            .iter()
            .enumerate()
            .map(|(i, x)| x * 2.0 + i as f32)
            .collect();
        assert!(
            max_abs(&real, v) <= 2.0 * TOLERANCE,
            "row {k}: {real:?} vs {v:?}"
        );
    }
}

/// The series fixture (BasicMotions, 4 classes, 6 × 100): burn and tract agree on every class, the
/// metadata says `[6, 100]`, and de-normalisation is per channel, as the trainer fitted it.
#[test]
fn the_series_fixture_agrees_between_burn_and_tract_with_per_channel_units() {
    let device = Device::flex();
    let (_, meta, g) = load_generator(&fixture("basicmotions"), &device).unwrap();
    let onnx =
        keel_runtime::Generator::load(&fixture("basicmotions").join("generator.onnx")).unwrap();
    assert_eq!(onnx.meta.output_shape, vec![6, 100]);
    assert_eq!(onnx.meta.classes, meta.classes);
    match &onnx.meta.denorm {
        keel_runtime::meta::Denorm::MeanStd { mean, std } => {
            assert_eq!((mean, std), (&meta.normalizer.mean, &meta.normalizer.std));
            assert_eq!(mean.len(), 6, "one entry per channel");
        }
        other => panic!("unexpected {other:?}"),
    }
    for rows in BATCHES {
        let z = latents(rows, g.latent(), 5);
        let mut onehot = vec![0f32; rows * 4];
        for r in 0..rows {
            onehot[r * 4 + r % 4] = 1.0;
        }
        let ours = values(g.forward_conditional(
            tensor(&z, rows, &device),
            tensor(&onehot, rows, &device),
            GenMode::inference(),
        ));
        let err = max_abs(&ours, &tract(&onnx, rows, &z, Some(&onehot)));
        assert!(err <= TOLERANCE, "batch {rows}: {err}");
    }
}
