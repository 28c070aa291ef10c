//! The ONNX loader against hostile files: the committed generator truncated, bit-flipped, spliced
//! with junk, or edited at the protobuf level to lie (initializer shapes up to 2⁶², metadata sizes
//! up to u64::MAX, ports of the wrong rank). Each gives an error naming the file, or a model that
//! generates; nothing panics and nothing allocates what the file does not hold.

use keel_runtime::Generator;
use proptest::prelude::*;
use proptest::test_runner::Config;
use prost::Message;
use std::path::Path;
use tract_onnx::pb;

const MODEL: &[u8] = include_bytes!("../../tests/fixtures/ring8/generator.onnx");

fn config() -> Config {
    Config {
        cases: 128,
        failure_persistence: None,
        ..Config::default()
    }
}

/// Loads `bytes` as a model file; if it loads, plans and runs one batch.
fn try_model(dir: &Path, bytes: &[u8]) -> Result<bool, TestCaseError> {
    let p = dir.join("model.onnx");
    std::fs::write(&p, bytes).unwrap();
    match Generator::load(&p) {
        Ok(g) => {
            prop_assert!(g.meta.latent <= 1 << 16 && g.meta.sample_len() <= 1 << 24);
            let b = 2;
            let z = vec![0.25f32; b * g.meta.latent];
            let k = g.meta.classes.len();
            let class = (k > 0).then(|| (0..b * k).map(|i| (i % k == 0) as u8 as f32).collect());
            let _ = g.plan(b).and_then(|plan| g.run(&plan, b, z, class));
            Ok(true)
        }
        Err(e) => {
            let msg = format!("{e:#}");
            prop_assert!(
                msg.contains("model.onnx"),
                "error without the file: {}",
                msg
            );
            Ok(false)
        }
    }
}

fn proto() -> pb::ModelProto {
    pb::ModelProto::decode(MODEL).unwrap()
}

#[test]
fn the_fixture_loads() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("m.onnx");
    std::fs::write(&p, MODEL).unwrap();
    assert!(Generator::load(&p).is_ok());
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn truncations_are_refused(len in 0..MODEL.len()) {
        let tmp = tempfile::tempdir().unwrap();
        // Protobuf has no length of its own: a cut at a field boundary can still decode, but not
        // as a whole Keel generator.
        prop_assert!(!try_model(tmp.path(), &MODEL[..len])?);
    }

    #[test]
    fn flipped_bits_and_junk(
        flips in proptest::collection::vec(any::<usize>(), 1..8),
        junk in proptest::collection::vec(any::<u8>(), 0..32),
        at in any::<usize>(),
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let mut bytes = MODEL.to_vec();
        for f in flips {
            let i = (f / 8) % bytes.len();
            bytes[i] ^= 1 << (f % 8);
        }
        let i = at % bytes.len();
        bytes.splice(i..i, junk);
        try_model(tmp.path(), &bytes)?;
    }

    #[test]
    fn arbitrary_bytes_are_refused(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let tmp = tempfile::tempdir().unwrap();
        prop_assert!(!try_model(tmp.path(), &bytes)?);
    }

    /// An initializer whose shape claims far more than its data holds.
    #[test]
    fn lying_initializer_shapes(
        which in any::<usize>(),
        dims in proptest::collection::vec(prop_oneof![Just(-1i64), Just(0), 1i64..1 << 20, Just(1 << 40), Just(i64::MAX)], 0..4),
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let mut m = proto();
        let g = m.graph.as_mut().unwrap();
        let n = g.initializer.len();
        g.initializer[which % n].dims = dims;
        try_model(tmp.path(), &m.encode_to_vec())?;
    }

    /// Metadata that lies about the generator's sizes.
    #[test]
    fn lying_metadata(
        which in any::<usize>(),
        value in prop_oneof![
            Just("18446744073709551615".to_string()),
            Just("4294967296".to_string()),
            Just("0".to_string()),
            Just("-3".to_string()),
            Just("[1e308, -1e308]".to_string()),
            Just("{}".to_string()),
            ".{0,12}",
        ],
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let mut m = proto();
        let n = m.metadata_props.len();
        m.metadata_props[which % n].value = value;
        try_model(tmp.path(), &m.encode_to_vec())?;
    }

    /// Input and output ports with lying shapes.
    #[test]
    fn lying_ports(dims in proptest::collection::vec(prop_oneof![Just(-5i64), 0i64..5, Just(1 << 40)], 0..4), output in any::<bool>()) {
        let tmp = tempfile::tempdir().unwrap();
        let mut m = proto();
        let g = m.graph.as_mut().unwrap();
        let port = if output { &mut g.output[0] } else { &mut g.input[0] };
        if let Some(pb::type_proto::Value::TensorType(t)) = port.r#type.as_mut().and_then(|t| t.value.as_mut()) {
            t.shape = Some(pb::TensorShapeProto {
                dim: dims
                    .into_iter()
                    .map(|d| pb::tensor_shape_proto::Dimension {
                        value: Some(pb::tensor_shape_proto::dimension::Value::DimValue(d)),
                        denotation: String::new(),
                    })
                    .collect(),
            });
        }
        try_model(tmp.path(), &m.encode_to_vec())?;
    }
}
