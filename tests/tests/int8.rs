//! The int8 program against the float model: the committed grid25 generator keeps its modes and
//! 30 dB end to end, and every generator shape the trainer exports quantizes and runs.

mod common;

use common::*;
use keel_firmware::{Kernel, Model};
use keel_runtime::quantize::{quantize_generator, HostArena, Options};
use std::path::Path;

fn fixture(name: &str, file: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
        .join(file)
}

#[test]
fn grid25_int8_keeps_the_modes_the_hq_share_and_30_db() {
    let g = keel_runtime::Generator::load(&fixture("grid25", "generator.onnx")).unwrap();
    let opt = Options {
        calib: 1000,
        eval: 2500,
        seed: 0,
        gptq: true,
    };
    let (bytes, r) = quantize_generator(&g, &opt).unwrap();
    eprintln!("{}", serde_json::to_string_pretty(&r).unwrap());
    assert!(
        r.float_vs_tract < 1e-4,
        "graph read wrong: {}",
        r.float_vs_tract
    );
    assert!(r.sqnr_db >= 30.0, "end-to-end SQNR {:.1} dB", r.sqnr_db);
    let (f, q) = (r.modes_float.unwrap(), r.modes_int8.unwrap());
    assert!(
        f.modes.abs_diff(q.modes) <= 1,
        "modes: float {} int8 {}",
        f.modes,
        q.modes
    );
    assert!(
        (f.hq_pct - q.hq_pct).abs() <= 2.0,
        "HQ: float {:.1} int8 {:.1}",
        f.hq_pct,
        q.hq_pct
    );
    assert_eq!(f.modes, 25, "the fixture itself covers the grid");
    // The committed .kq8 (what the firmware tests embed) is exactly what the quantizer writes today.
    let committed = std::fs::read(fixture("grid25", "generator.kq8")).unwrap();
    assert!(
        committed == bytes,
        "tests/fixtures/grid25/generator.kq8 is stale: re-run keel-run quantize"
    );
}

#[test]
fn every_generator_shape_quantizes_and_the_int8_program_follows_the_float_one() {
    let dir = tempfile::tempdir().unwrap();
    for (i, (settings, classes, _)) in SHAPES.iter().enumerate() {
        let (_, _, path) = exported_shape(i, dir.path());
        let onnx = keel_runtime::Generator::load(&path).unwrap();
        let (bytes, r) = quantize_generator(
            &onnx,
            &Options {
                calib: 300,
                eval: 300,
                seed: 1,
                gptq: true,
            },
        )
        .unwrap();
        assert!(
            r.sqnr_db >= 25.0,
            "{settings:?}: {:.1} dB ({:?})",
            r.sqnr_db,
            r.layers
        );
        let m = Model::parse(&bytes).unwrap();
        assert_eq!(m.header.classes as usize, *classes);
        let mut buffers = HostArena::for_model(&m);
        let mut arena = buffers.arena();
        // A conditional model's classes differ on the same latent seed and index.
        let per_class: Vec<Vec<i8>> = (0..(*classes).max(1) as u16)
            .map(|c| {
                m.generate(c, 9, 0, &mut arena, Kernel::Scalar)
                    .unwrap()
                    .to_vec()
            })
            .collect();
        if *classes > 1 {
            assert!(
                per_class.windows(2).any(|w| w[0] != w[1]),
                "{settings:?}: classes ignored"
            );
        }
    }
}
