//! `keel export`: a run's EMA generator → ONNX (opset 18, symbolic batch axis) carrying the metadata a
//! user of the file needs. burn-onnx writes the graph; we rename its inputs and outputs to stable names
//! and add `metadata_props` by re-encoding the model proto.
//!
//! Where burn-onnx 0.22 cannot write what a consumer reads, the proto is fixed here:
//! - A conditional generator is exported with one input, `[z, onehot(class)]`: with two inputs each
//!   has a dynamic batch axis, every reshape's batch dimension matches both, and the exporter refuses
//!   it ("dimension matches 2 dynamic source axes and is ambiguous"). `split_joint_input` then
//!   declares the inputs `z` and `class` and joins them with a `Concat` node, so the file's
//!   interface is the same for every generator.
//! - The conv generator's nearest upsampling comes out as `Resize` with `sizes` and `axes = [2, 3]`,
//!   which burn-onnx's own importer refuses; `resize_by_scales` rewrites it with `scales`.
//! - The output width, derived by the exporter from an element count, is declared static.
//!
//! The model itself avoids what cannot be exported at all (see `model::temporal`): no `[N, C·T] →
//! [N, C, T]` reshape (the projection is a full convolution instead) and no `Slice` of a tensor
//! with a dynamic batch (the crop is a `Gather`).

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
    let device = g.device();
    let copy = Generator::new(
        &info.config.model,
        g.classes,
        g.output_dim,
        info.meta.shape,
        &mut rand_pcg::Pcg64Mcg::seed_from_u64(0),
        &device,
    )?
    .load_record(g.clone().into_record());
    // One input, `[z, onehot(class)]` joined: with two inputs both batch axes match every reshape's
    // batch dimension and burn-onnx refuses it as ambiguous ("dimension matches 2 dynamic source
    // axes"). `finish_proto` then splits it into the inputs `z` and `class` with a Concat node.
    let joint = g.input_dim;
    let spec = InputSpec::new([AxisSpec::dynamic(BATCH_AXIS), AxisSpec::Static]);
    let a = Tensor::<2>::zeros([2, joint], &device);
    let b = Tensor::<2>::zeros([3, joint], &device);
    let onnx = OnnxExporter::new()
        .export_dynamic(&copy, a, b, &[spec], |m: &Generator, z| {
            m.forward(z, GenMode::inference())
        })
        .map_err(|e| anyhow!("ONNX export failed: {e}"))?;
    let split = (g.classes > 0).then_some([g.latent(), g.classes]);
    let props = metadata(g, info).to_props();
    finish_proto(onnx.as_bytes(), split, g.output_dim, &props)
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

/// Renames the graph input to `z` and the output to `output`, splits a joint `[z, class]` input
/// into `z` and `class` (`split`: their widths) joined by a Concat node, and sets the metadata.
fn finish_proto(
    bytes: &[u8],
    split: Option<[usize; 2]>,
    output_dim: usize,
    props: &[(String, String)],
) -> Result<Vec<u8>> {
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
    if data_inputs.len() != 1 || graph.output.len() != 1 {
        bail!(
            "exported graph has {} inputs and {} outputs; expected 1 and 1",
            data_inputs.len(),
            graph.output.len(),
        );
    }
    let first = if split.is_some() { JOINT } else { INPUT_Z };
    let mut rename: HashMap<String, String> =
        HashMap::from([(data_inputs[0].clone(), first.to_string())]);
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
    if let Some(widths) = split {
        split_joint_input(graph, widths)?;
    }
    resize_by_scales(graph)?;
    // burn-onnx declares an output width it derived from an element count as a symbol; it is static.
    set_dim(&mut graph.output[0], 1, output_dim)?;
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

/// The graph's internal name for `[z, onehot(class)]`.
const JOINT: &str = "z_and_class";

/// Replaces the graph input `JOINT` by the inputs `z` and `class` (widths `[latent, classes]`) and
/// a first node `JOINT = Concat(z, class, axis = 1)`.
fn split_joint_input(graph: &mut onnx_ir::GraphProto, [latent, classes]: [usize; 2]) -> Result<()> {
    let at = graph
        .input
        .iter()
        .position(|v| v.name == JOINT)
        .context("exported graph lost its input")?;
    let joint = graph.input.remove(at);
    let part = |name: &str, width: usize| -> Result<onnx_ir::ValueInfoProto> {
        let mut v = joint.clone();
        v.name = name.into();
        set_dim(&mut v, 1, width)?;
        Ok(v)
    };
    graph.input.insert(at, part(INPUT_CLASS, classes)?);
    graph.input.insert(at, part(INPUT_Z, latent)?);
    let mut axis = onnx_ir::AttributeProto::new();
    axis.name = "axis".into();
    axis.i = 1;
    axis.type_ = onnx_ir::AttributeType::INT.into();
    let mut concat = onnx_ir::NodeProto::new();
    concat.name = "keel_join_class".into();
    concat.op_type = "Concat".into();
    concat.input = vec![INPUT_Z.into(), INPUT_CLASS.into()];
    concat.output = vec![JOINT.into()];
    concat.attribute.push(axis);
    graph.node.insert(0, concat);
    Ok(())
}

/// burn-onnx exports nearest upsampling as `Resize(x, sizes = [2L, 1], axes = [2, 3])`, which its own
/// importer (and older runtimes) refuse ("custom axes attribute is not supported"). Every Resize
/// Keel exports is the conv generator's ×2 upsampling of `[N, C, L, 1]`: it is rewritten as
/// `Resize(x, scales = [1, 1, 2, 1])`, the form every ONNX consumer reads.
fn resize_by_scales(graph: &mut onnx_ir::GraphProto) -> Result<()> {
    const SCALES: &str = "keel_upsample_scales";
    let mut used = false;
    for node in graph.node.iter_mut().filter(|n| n.op_type == "Resize") {
        let sizes = node.input.get(3).cloned().unwrap_or_default();
        let ok = graph.initializer.iter().any(|t| {
            t.name == sizes && t.raw_data.len() == 16 && t.raw_data[8..16] == 1i64.to_le_bytes()
        });
        if !ok {
            bail!(
                "exported Resize `{}` is not an upsampling of [N, C, L, 1]",
                node.name
            );
        }
        node.attribute.retain(|a| a.name != "axes");
        node.input.truncate(2);
        node.input.push(SCALES.into());
        used = true;
    }
    if used {
        let mut scales = onnx_ir::TensorProto::new();
        scales.name = SCALES.into();
        scales.data_type = 1; // FLOAT
        scales.dims = vec![4];
        let raw: Vec<u8> = [1f32, 1.0, 2.0, 1.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        scales.raw_data = raw.into();
        graph.initializer.push(scales);
    }
    Ok(())
}

/// Declares axis `axis` of the 2-axis value `v` as `size`.
fn set_dim(v: &mut onnx_ir::ValueInfoProto, axis: usize, size: usize) -> Result<()> {
    let dims = &mut v
        .type_
        .as_mut()
        .and_then(|t| t.mut_tensor_type().shape.as_mut())
        .with_context(|| format!("exported value `{}` has no shape", v.name))?
        .dim;
    if dims.len() != 2 {
        bail!(
            "exported value `{}` has {} axes, expected 2",
            v.name,
            dims.len()
        );
    }
    dims[axis].set_dim_value(size as i64);
    Ok(())
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
