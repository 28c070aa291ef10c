//! The ONNX contract of an exported Keel generator: the graph's input and output names and the
//! `keel.*` metadata that says what they mean. `keel export` writes it with `Metadata::to_props`;
//! `keel-run` reads it back with `Metadata::from_props`, which refuses what it cannot use.

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Version of this contract (names, keys, their meaning). Readers refuse newer ones.
pub const FORMAT_VERSION: u32 = 1;
/// Latent input `[N, latent]`, float32, drawn from N(0, I).
pub const INPUT_Z: &str = "z";
/// Class input of a conditional generator: `[N, classes]` float32 one-hot rows.
pub const INPUT_CLASS: &str = "class";
/// Output `[N, …output_shape]` in the model's normalised space (de-normalise with `keel.denorm`); a series
/// generator gives its `[C, T]` sample flat, `[N, C·T]` channel-major.
pub const OUTPUT: &str = "x";
/// The symbolic batch axis.
pub const BATCH_AXIS: &str = "batch";

/// The `keel.*` keys, in the order the writer emits them.
pub mod key {
    pub const FORMAT_VERSION: &str = "keel.format_version";
    pub const PRODUCER: &str = "keel.producer";
    pub const DEPENDENCIES: &str = "keel.dependencies";
    pub const LATENT: &str = "keel.latent";
    pub const CLASSES: &str = "keel.classes";
    pub const OUTPUT_SHAPE: &str = "keel.output_shape";
    pub const COLUMNS: &str = "keel.columns";
    pub const DENORM: &str = "keel.denorm";
    pub const DATASET: &str = "keel.dataset";
    pub const RECIPE: &str = "keel.recipe";
    pub const SEED: &str = "keel.seed";
    pub const STEP: &str = "keel.step";
    pub const METRICS: &str = "keel.metrics";
    pub const CONFIG: &str = "keel.config";
    pub const MODES: &str = "keel.modes";
}

/// Maps the model's normalised output back to real units, per channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Denorm {
    /// `x · std + mean`.
    MeanStd { mean: Vec<f64>, std: Vec<f64> },
    /// `min + (x + 1) / 2 · (max − min)`, for a model trained on data scaled to [−1, 1].
    MinMax { min: Vec<f64>, max: Vec<f64> },
}

impl Denorm {
    pub fn channels(&self) -> usize {
        match self {
            Denorm::MeanStd { mean, .. } => mean.len(),
            Denorm::MinMax { min, .. } => min.len(),
        }
    }

    /// De-normalises rows of `values` in place; channel `c` of a row covers `per_channel` values
    /// (1 for a vector, T for a `C × T` series).
    pub fn apply(&self, values: &mut [f32], per_channel: usize) {
        let channels = self.channels();
        for (i, v) in values.iter_mut().enumerate() {
            let c = (i / per_channel) % channels;
            let x = *v as f64;
            *v = match self {
                Denorm::MeanStd { mean, std } => x * std[c] + mean[c],
                Denorm::MinMax { min, max } => min[c] + (x + 1.0) * 0.5 * (max[c] - min[c]),
            } as f32;
        }
    }
}

/// The generating mixture of a built-in dataset (`keel.modes`), to score samples by mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Modes {
    pub centres: Vec<[f64; 2]>,
    pub std: f64,
}

/// Everything `keel.*` says, parsed and checked.
#[derive(Debug, Clone)]
pub struct Metadata {
    pub format_version: u32,
    /// `keel-trainer 0.1.0`: what wrote the file.
    pub producer: String,
    /// The dependencies that shaped the weights, with versions (`burn 0.22.1, burn-onnx 0.22.1`).
    pub dependencies: String,
    pub latent: usize,
    /// Class names; empty for an unconditional generator.
    pub classes: Vec<String>,
    /// Shape of one sample: `[D]` or `[C, T]`.
    pub output_shape: Vec<usize>,
    /// Names of the flattened output columns (may be empty: then `v0`, `v1`, …).
    pub columns: Vec<String>,
    pub denorm: Denorm,
    pub dataset: String,
    pub recipe: String,
    pub seed: u64,
    pub step: u64,
    /// Final training metrics as JSON (`null` when the dataset has none).
    pub metrics: serde_json::Value,
    /// The full training config (TOML).
    pub config: String,
    pub modes: Option<Modes>,
    /// Every property of the file, `keel.*` or not, for `keel-run info` (not written by `to_props`).
    pub all: BTreeMap<String, String>,
}

impl Metadata {
    /// The `metadata_props` of the file, in writing order, all values strings (JSON where structured).
    pub fn to_props(&self) -> Vec<(String, String)> {
        let mut props = vec![
            (key::FORMAT_VERSION, self.format_version.to_string()),
            (key::PRODUCER, self.producer.clone()),
            (key::DEPENDENCIES, self.dependencies.clone()),
            (key::LATENT, self.latent.to_string()),
            (key::CLASSES, to_json(&self.classes)),
            (key::OUTPUT_SHAPE, to_json(&self.output_shape)),
            (key::COLUMNS, to_json(&self.columns)),
            (key::DENORM, to_json(&self.denorm)),
            (key::DATASET, self.dataset.clone()),
            (key::RECIPE, self.recipe.clone()),
            (key::SEED, self.seed.to_string()),
            (key::STEP, self.step.to_string()),
            (key::METRICS, self.metrics.to_string()),
            (key::CONFIG, self.config.clone()),
        ];
        // Where the dataset knows its modes, a runtime can score samples the way training did
        // (keel-run quantize compares int8 against float with it).
        if let Some(m) = &self.modes {
            props.push((key::MODES, to_json(m)));
        }
        props.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }

    pub fn from_props(props: BTreeMap<String, String>) -> Result<Self> {
        if !props.keys().any(|k| k.starts_with("keel.")) {
            bail!(
                "it has no keel.* metadata: not a Keel generator (export one with `keel export RUN_DIR`)"
            );
        }
        let get = |key: &str| -> Result<&str> {
            props
                .get(key)
                .map(String::as_str)
                .ok_or_else(|| anyhow!("metadata field `{key}` is missing"))
        };
        fn parse<T: std::str::FromStr>(key: &str, v: &str) -> Result<T> {
            v.trim()
                .parse()
                .map_err(|_| anyhow!("metadata field `{key}`: `{v}` is not a valid number"))
        }
        fn json<T: serde::de::DeserializeOwned>(key: &str, v: &str) -> Result<T> {
            serde_json::from_str(v).with_context(|| format!("metadata field `{key}` is not valid"))
        }
        let format_version: u32 = parse(key::FORMAT_VERSION, get(key::FORMAT_VERSION)?)?;
        if format_version == 0 || format_version > FORMAT_VERSION {
            bail!(
                "metadata field `keel.format_version` is {format_version}; this keel-run reads version {FORMAT_VERSION} (upgrade keel-run)"
            );
        }
        let latent: usize = parse(key::LATENT, get(key::LATENT)?)?;
        let classes: Vec<String> = json(key::CLASSES, get(key::CLASSES)?)?;
        let output_shape: Vec<usize> = json(key::OUTPUT_SHAPE, get(key::OUTPUT_SHAPE)?)?;
        let denorm: Denorm = json(key::DENORM, get(key::DENORM)?)?;
        let columns: Vec<String> = match props.get(key::COLUMNS) {
            Some(v) => json(key::COLUMNS, v)?,
            None => Vec::new(),
        };
        let m = Metadata {
            format_version,
            producer: props.get(key::PRODUCER).cloned().unwrap_or_default(),
            dependencies: props.get(key::DEPENDENCIES).cloned().unwrap_or_default(),
            latent,
            classes,
            output_shape,
            columns,
            denorm,
            dataset: props.get(key::DATASET).cloned().unwrap_or_default(),
            recipe: props.get(key::RECIPE).cloned().unwrap_or_default(),
            seed: parse(key::SEED, props.get(key::SEED).map_or("0", |s| s))?,
            step: parse(key::STEP, props.get(key::STEP).map_or("0", |s| s))?,
            metrics: match props.get(key::METRICS) {
                Some(v) => json(key::METRICS, v)?,
                None => serde_json::Value::Null,
            },
            config: props.get(key::CONFIG).cloned().unwrap_or_default(),
            modes: match props.get(key::MODES) {
                Some(v) => Some(json(key::MODES, v)?),
                None => None,
            },
            all: props,
        };
        m.check()?;
        Ok(m)
    }

    /// Checks the fields against each other; `from_props` calls it.
    pub fn check(&self) -> Result<()> {
        if self.latent == 0 || self.latent > 1 << 16 {
            bail!(
                "metadata field `keel.latent` is {}: out of range",
                self.latent
            );
        }
        if self.output_shape.is_empty()
            || self.output_shape.contains(&0)
            || self.sample_len() > 1 << 24
        {
            bail!(
                "metadata field `keel.output_shape` is {:?}: not a usable sample shape",
                self.output_shape
            );
        }
        let ch = self.output_shape[0];
        let (a, b) = match &self.denorm {
            Denorm::MeanStd { mean, std } => (mean.len(), std.len()),
            Denorm::MinMax { min, max } => (min.len(), max.len()),
        };
        if a != ch || b != ch {
            bail!("metadata field `keel.denorm` has {a}/{b} entries for {ch} channels");
        }
        if !self.columns.is_empty() && self.columns.len() != self.sample_len() {
            bail!(
                "metadata field `keel.columns` names {} columns; a sample has {}",
                self.columns.len(),
                self.sample_len()
            );
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(dup) = self.classes.iter().find(|c| !seen.insert(c.as_str())) {
            bail!("metadata field `keel.classes` lists `{dup}` twice");
        }
        Ok(())
    }

    /// Values in one sample (product of the output shape).
    pub fn sample_len(&self) -> usize {
        self.output_shape.iter().product()
    }

    pub fn is_conditional(&self) -> bool {
        !self.classes.is_empty()
    }

    /// Column names of one flattened sample.
    pub fn column_names(&self) -> Vec<String> {
        if !self.columns.is_empty() {
            return self.columns.clone();
        }
        match self.output_shape.as_slice() {
            [c, t] => (0..*c)
                .flat_map(|c| (0..*t).map(move |t| format!("c{c}_t{t}")))
                .collect(),
            _ => (0..self.sample_len()).map(|i| format!("v{i}")).collect(),
        }
    }

    /// Index of a class by name, with the list of known names in the error.
    pub fn class_index(&self, name: &str) -> Result<usize> {
        if !self.is_conditional() {
            bail!("--class {name}: this generator is unconditional (it has no classes)");
        }
        self.classes.iter().position(|c| c == name).ok_or_else(|| {
            anyhow!(
                "--class {name}: unknown class; this generator knows {}",
                self.classes.join(", ")
            )
        })
    }
}

/// JSON text of plain data (no maps with non-string keys: it cannot fail).
fn to_json<T: Serialize + ?Sized>(v: &T) -> String {
    serde_json::to_string(v).expect("plain data serialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `keel export` writes is what `keel-run` reads back, field for field.
    #[test]
    fn the_reader_reads_back_what_the_writer_wrote() {
        let written = Metadata {
            format_version: FORMAT_VERSION,
            producer: "keel-trainer 0.1.0".into(),
            dependencies: "burn 0.22.1".into(),
            latent: 8,
            classes: vec!["walk".into(), "run".into()],
            output_shape: vec![2, 3],
            columns: Vec::new(),
            denorm: Denorm::MeanStd {
                mean: vec![0.1, -2.5e-7],
                std: vec![1.0 / 3.0, 7.0],
            },
            dataset: "imu".into(),
            recipe: "stable".into(),
            seed: 42,
            step: 1000,
            metrics: serde_json::json!({ "modes": 8 }),
            config: "[train]\nseed = 42\n".into(),
            modes: Some(Modes {
                centres: vec![[1.0, 0.0], [0.0, 1.0]],
                std: 0.01,
            }),
            all: BTreeMap::new(),
        };
        let props = written.to_props();
        assert_eq!(props[0].0, key::FORMAT_VERSION);
        let read = Metadata::from_props(props.into_iter().collect()).unwrap();
        assert_eq!(read.producer, written.producer);
        assert_eq!(read.dependencies, written.dependencies);
        assert_eq!(read.latent, written.latent);
        assert_eq!(read.classes, written.classes);
        assert_eq!(read.output_shape, written.output_shape);
        // The exact f64s: de-normalised samples depend on them.
        assert_eq!(read.denorm, written.denorm);
        assert_eq!((read.seed, read.step), (written.seed, written.step));
        assert_eq!(read.metrics, written.metrics);
        assert_eq!(read.config, written.config);
        assert_eq!(read.modes, written.modes);
        assert_eq!(read.all.len(), 15);
    }
}
