//! Loading a Keel generator: read the file, check it is one (inputs, output, metadata), and keep one
//! optimised tract plan per batch size (a plan with a symbolic batch is several times slower).

use crate::meta::{Metadata, INPUT_CLASS, INPUT_Z, OUTPUT};
use anyhow::{anyhow, bail, Context, Result};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tract_onnx::pb;
use tract_onnx::prelude::*;

/// A runnable plan pinned to one batch size.
pub type Plan = Arc<TypedRunnableModel>;

/// Shape of one graph input or output as written in the file (`None` for a symbolic axis).
#[derive(Debug, Clone)]
pub struct Port {
    pub name: String,
    pub shape: Vec<Option<usize>>,
}

/// A validated Keel generator.
pub struct Generator {
    pub path: PathBuf,
    pub meta: Metadata,
    pub inputs: Vec<Port>,
    pub output: Port,
    /// Parameter count (elements of all initializers).
    pub parameters: usize,
    model: InferenceModel,
    /// The decoded ONNX file, for the quantizer, which reads the graph itself.
    pub proto: pb::ModelProto,
    plans: Mutex<HashMap<usize, Plan>>,
}

impl Generator {
    /// Loads and validates `path`. Every error names the file.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read model file {}", path.display()))?;
        Self::from_bytes(&bytes, path).with_context(|| format!("{}", path.display()))
    }

    fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self> {
        if bytes.is_empty() {
            bail!("the file is empty");
        }
        let onnx = tract_onnx::onnx();
        let proto = onnx
            .proto_model_for_read(&mut &bytes[..])
            .map_err(|e| anyhow!("not an ONNX model (it does not decode as ONNX protobuf: {e}); is the file truncated?"))?;
        let graph = proto
            .graph
            .as_ref()
            .ok_or_else(|| anyhow!("not an ONNX model (no graph)"))?;
        let props: BTreeMap<String, String> = proto
            .metadata_props
            .iter()
            .map(|p| (p.key.clone(), p.value.clone()))
            .collect();
        let meta = Metadata::from_props(props)?;
        let initializers: std::collections::HashSet<&str> =
            graph.initializer.iter().map(|t| t.name.as_str()).collect();
        let inputs: Vec<Port> = graph
            .input
            .iter()
            .filter(|v| !initializers.contains(v.name.as_str()))
            .map(port)
            .collect();
        let outputs: Vec<Port> = graph.output.iter().map(port).collect();
        check_ports(&meta, &inputs, &outputs)?;
        let parameters = graph
            .initializer
            .iter()
            .map(|t| t.dims.iter().map(|&d| d.max(0) as usize).product::<usize>())
            .sum();
        let model = onnx
            .model_for_proto_model(&proto)
            .map_err(|e| anyhow!("tract cannot load the graph: {e}"))?;
        Ok(Self {
            path: path.to_path_buf(),
            meta,
            inputs,
            output: outputs.into_iter().next().expect("checked: one output"),
            parameters,
            model,
            proto,
            plans: Mutex::new(HashMap::new()),
        })
    }

    /// The optimised plan for `batch` rows, built once and cached.
    pub fn plan(&self, batch: usize) -> Result<Plan> {
        if let Some(p) = self.plans.lock().expect("plan cache").get(&batch) {
            return Ok(p.clone());
        }
        let plan = self
            .typed(batch)?
            .into_optimized()
            .and_then(|m| m.into_runnable())
            .map_err(|e| {
                anyhow!(
                    "{}: cannot optimise for batch {batch}: {e}",
                    self.path.display()
                )
            })?;
        self.plans
            .lock()
            .expect("plan cache")
            .insert(batch, plan.clone());
        Ok(plan)
    }

    /// The graph with the batch pinned, typed and decluttered (for costs and plans).
    pub fn typed(&self, batch: usize) -> Result<TypedModel> {
        let pin = || -> TractResult<TypedModel> {
            let mut m = self.model.clone();
            m.set_input_fact(0, f32::fact([batch, self.meta.latent]).into())?;
            if self.meta.is_conditional() {
                m.set_input_fact(1, f32::fact([batch, self.meta.classes.len()]).into())?;
            }
            m.into_typed()?.into_decluttered()
        };
        pin().map_err(|e| {
            let path = self.path.display();
            anyhow!("{path}: cannot type the graph for batch {batch}: {e}")
        })
    }

    /// Multiply-accumulates for one sample, from tract's cost model of the batch-1 graph.
    pub fn macs_per_sample(&self) -> Result<u64> {
        let m = self.typed(1)?;
        let mut total = 0u64;
        for node in m.nodes() {
            let facts: TVec<TypedFact> =
                m.node_input_facts(node.id)?.into_iter().cloned().collect();
            let refs: TVec<&TypedFact> = facts.iter().collect();
            for (cost, n) in node.op.cost(&refs)? {
                if matches!(cost, tract_onnx::tract_core::ops::Cost::FMA(_)) {
                    total += n.to_i64().unwrap_or(0).max(0) as u64;
                }
            }
        }
        Ok(total)
    }

    /// `z` `[batch, latent]` and, when conditional, `class` `[batch, classes]` as tract values.
    pub fn inputs(
        &self,
        batch: usize,
        z: Vec<f32>,
        class: Option<Vec<f32>>,
    ) -> Result<TVec<TValue>> {
        let mut inputs: TVec<TValue> = tvec![tensor_from(z, &[batch, self.meta.latent])?.into()];
        if let Some(c) = class {
            inputs.push(tensor_from(c, &[batch, self.meta.classes.len()])?.into());
        }
        Ok(inputs)
    }

    /// Runs `batch` rows: `z` is `[batch, latent]`, `class` `[batch, classes]` one-hot (conditional only).
    /// Returns the output in normalised units, `[batch, sample_len]` row-major.
    pub fn run(
        &self,
        plan: &Plan,
        batch: usize,
        z: Vec<f32>,
        class: Option<Vec<f32>>,
    ) -> Result<Vec<f32>> {
        let out = plan
            .run(self.inputs(batch, z, class)?)
            .map_err(|e| anyhow!("{}: inference failed: {e}", self.path.display()))?;
        let view = out[0]
            .to_plain_array_view::<f32>()
            .map_err(|e| anyhow!("{}: output is not float32: {e}", self.path.display()))?;
        let v: Vec<f32> = view.iter().copied().collect();
        if v.len() != batch * self.meta.sample_len() {
            bail!(
                "{}: output has {} values for {batch} samples of shape {:?}",
                self.path.display(),
                v.len(),
                self.meta.output_shape
            );
        }
        Ok(v)
    }
}

fn tensor_from(v: Vec<f32>, shape: &[usize]) -> Result<Tensor> {
    Tensor::from_shape(shape, &v).map_err(|e| anyhow!("bad input tensor: {e}"))
}

fn port(v: &pb::ValueInfoProto) -> Port {
    let shape = v
        .r#type
        .as_ref()
        .and_then(|t| t.value.as_ref())
        .and_then(|pb::type_proto::Value::TensorType(tt)| tt.shape.as_ref())
        .map(|s| {
            s.dim
                .iter()
                .map(|d| match &d.value {
                    Some(pb::tensor_shape_proto::dimension::Value::DimValue(n)) if *n > 0 => {
                        Some(*n as usize)
                    }
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    Port {
        name: v.name.clone(),
        shape,
    }
}

/// The graph must take `z` (and `class` when the metadata lists classes) and give `x`, with the
/// sizes the metadata promises.
fn check_ports(meta: &Metadata, inputs: &[Port], outputs: &[Port]) -> Result<()> {
    let want: Vec<&str> = if meta.is_conditional() {
        vec![INPUT_Z, INPUT_CLASS]
    } else {
        vec![INPUT_Z]
    };
    let got: Vec<&str> = inputs.iter().map(|p| p.name.as_str()).collect();
    if got != want {
        bail!("not a Keel generator: inputs are {got:?}, expected {want:?}");
    }
    let widths = [Some(meta.latent), Some(meta.classes.len())];
    for (p, w) in inputs.iter().zip(widths) {
        if p.shape.len() != 2 || p.shape[1] != w {
            bail!(
                "not a Keel generator: input `{}` has shape {:?}, expected [batch, {}]",
                p.name,
                p.shape,
                w.unwrap_or(0)
            );
        }
    }
    if outputs.len() != 1 || outputs[0].name != OUTPUT {
        let names: Vec<&str> = outputs.iter().map(|p| p.name.as_str()).collect();
        bail!("not a Keel generator: outputs are {names:?}, expected [\"{OUTPUT}\"]");
    }
    let out = &outputs[0];
    let per_sample: Vec<Option<usize>> = meta.output_shape.iter().map(|&d| Some(d)).collect();
    // A series generator may also give its `C × T` sample flat (channel-major): same values.
    let flat = out.shape.len() == 2 && out.shape[1] == Some(meta.sample_len());
    if !flat && (out.shape.len() != per_sample.len() + 1 || out.shape[1..] != per_sample[..]) {
        bail!(
            "not a Keel generator: output `x` has shape {:?}, metadata says [batch, {:?}]",
            out.shape,
            meta.output_shape
        );
    }
    Ok(())
}
