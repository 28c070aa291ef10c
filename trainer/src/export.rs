//! `keel export`: a run's EMA generator → ONNX (opset 18, symbolic batch axis) carrying the metadata a
//! user of the file needs. burn-onnx writes the graph; we rename its inputs and outputs to stable names
//! and add `metadata_props` by re-encoding the model proto.

use crate::artifacts::{load_generator, GeneratorMeta, Summary, ONNX_FILE};
use crate::config::TrainConfig;
use crate::model::generator::GenMode;
use crate::model::Generator;
use crate::rundir::write_atomic;
use anyhow::{anyhow, bail, Context, Result};
use burn::module::Module;
use burn::tensor::{Device, Tensor};
use burn_onnx::export::{AxisSpec, InputSpec, OnnxExporter};
use keel_contract::onnx::{Denorm, Metadata, Modes};
use protobuf::Message;
use rand::SeedableRng;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub use keel_contract::onnx::{BATCH_AXIS, FORMAT_VERSION, INPUT_CLASS, INPUT_Z, OUTPUT};

/// Everything the metadata says besides the graph itself.
pub struct ExportInfo<'a> {
    pub meta: &'a GeneratorMeta,
    pub config: &'a TrainConfig,
    pub recipe: &'a str,
    /// Final metrics as JSON (`null` when the dataset has none).
    pub metrics: serde_json::Value,
}

/// The ONNX bytes of `g` with Keel's names and metadata.
pub fn export_generator(g: &Generator, info: &ExportInfo) -> Result<Vec<u8>> {
    // Export works on a deep copy: burn-onnx moves the module to a capture device, and a plain clone
    // would share BatchNorm running statistics with the trained generator.
    let device = g.out.weight.val().device();
    let copy = Generator::new(
        &info.config.model,
        g.classes,
        g.output_dim,
        &mut rand_pcg::Pcg64Mcg::seed_from_u64(0),
        &device,
    )
    .load_record(g.clone().into_record());
    let latent = g.latent();
    let spec2 = || InputSpec::new([AxisSpec::dynamic(BATCH_AXIS), AxisSpec::Static]);
    let exporter = OnnxExporter::new();
    let onnx = if g.classes == 0 {
        let a = Tensor::<2>::zeros([2, latent], &device);
        let b = Tensor::<2>::zeros([3, latent], &device);
        exporter.export_dynamic(&copy, a, b, &[spec2()], |m: &Generator, z| {
            m.forward(z, GenMode::inference())
        })
    } else {
        let c = g.classes;
        let a = (
            Tensor::<2>::zeros([2, latent], &device),
            Tensor::<2>::zeros([2, c], &device),
        );
        let b = (
            Tensor::<2>::zeros([3, latent], &device),
            Tensor::<2>::zeros([3, c], &device),
        );
        exporter.export_dynamic(&copy, a, b, &[spec2(), spec2()], |m: &Generator, (z, y)| {
            m.forward_conditional(z, y, GenMode::inference())
        })
    }
    .map_err(|e| anyhow!("ONNX export failed: {e}"))?;
    let mut input_names = vec![INPUT_Z];
    if g.classes > 0 {
        input_names.push(INPUT_CLASS);
    }
    finish_proto(onnx.as_bytes(), &input_names, &metadata(g, info).to_props())
}

/// The `keel.*` metadata of `g` (the contract's one writer is `Metadata::to_props`).
fn metadata(g: &Generator, info: &ExportInfo) -> Metadata {
    let m = info.meta;
    Metadata {
        format_version: FORMAT_VERSION,
        producer: format!("keel-trainer {}", env!("CARGO_PKG_VERSION")),
        dependencies: env!("KEEL_DEP_VERSIONS").to_string(),
        latent: g.latent(),
        classes: m.classes.clone(),
        output_shape: match m.shape {
            Some(s) => s.to_vec(),
            None => vec![m.output_dim],
        },
        columns: m.columns.clone(),
        denorm: Denorm::MeanStd {
            mean: m.normalizer.mean.clone(),
            std: m.normalizer.std.clone(),
        },
        dataset: m.dataset.clone(),
        recipe: info.recipe.to_string(),
        seed: m.seed,
        step: m.step as u64,
        metrics: info.metrics.clone(),
        config: info.config.to_toml(),
        // Where the dataset knows its modes, a runtime can score samples the way training did.
        modes: crate::data::Mixture::named(&m.dataset).map(|mix| Modes {
            centres: mix.centres,
            std: mix.std,
        }),
        all: Default::default(),
    }
}

/// Renames the graph inputs (in order) and the single output, and sets the metadata.
fn finish_proto(bytes: &[u8], inputs: &[&str], props: &[(String, String)]) -> Result<Vec<u8>> {
    let mut model = onnx_ir::ModelProto::parse_from_bytes(bytes)
        .context("burn-onnx wrote a model that does not parse")?;
    let graph = model
        .graph
        .as_mut()
        .context("exported model has no graph")?;
    let initializers: std::collections::HashSet<String> =
        graph.initializer.iter().map(|t| t.name.clone()).collect();
    let data_inputs: Vec<String> = graph
        .input
        .iter()
        .map(|v| v.name.clone())
        .filter(|n| !initializers.contains(n))
        .collect();
    if data_inputs.len() != inputs.len() || graph.output.len() != 1 {
        bail!(
            "exported graph has {} inputs and {} outputs; expected {} and 1",
            data_inputs.len(),
            graph.output.len(),
            inputs.len()
        );
    }
    let mut rename: HashMap<String, String> = data_inputs
        .into_iter()
        .zip(inputs.iter().map(|s| s.to_string()))
        .collect();
    rename.insert(graph.output[0].name.clone(), OUTPUT.to_string());
    let fix = |name: &mut String| {
        if let Some(n) = rename.get(name.as_str()) {
            *name = n.clone();
        }
    };
    for v in graph
        .input
        .iter_mut()
        .chain(graph.output.iter_mut())
        .chain(graph.value_info.iter_mut())
    {
        fix(&mut v.name);
    }
    for node in graph.node.iter_mut() {
        node.input.iter_mut().for_each(fix);
        node.output.iter_mut().for_each(fix);
    }
    graph.name = "keel_generator".into();
    model.metadata_props.clear();
    for (k, v) in props {
        // The entry type is not re-exported by onnx-ir; its fields are public.
        model.metadata_props.push(Default::default());
        let e = model.metadata_props.last_mut().expect("just pushed");
        e.key = k.clone();
        e.value = v.clone();
    }
    model
        .write_to_bytes()
        .context("cannot encode the ONNX model")
}

/// Exports a run directory's EMA generator to `out` (default `RUN_DIR/generator.onnx`), atomically.
pub fn export_run(run: &Path, out: Option<&Path>) -> Result<PathBuf> {
    let device = Device::flex();
    let (config, meta, g) = load_generator(run, &device)?;
    let summary = Summary::read(run)?;
    let info = ExportInfo {
        meta: &meta,
        config: &config,
        recipe: &summary.recipe,
        metrics: serde_json::to_value(&summary.final_metrics)?,
    };
    let bytes = export_generator(&g, &info)?;
    let out = out.map_or_else(|| run.join(ONNX_FILE), Path::to_path_buf);
    write_atomic(&out, &bytes)?;
    Ok(out)
}
