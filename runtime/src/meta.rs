//! The `keel.*` metadata of an exported generator: what its inputs mean and how to read its output.
//! The contract is written by `keel export` (trainer/src/export.rs); this side refuses what it cannot use.

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;
use std::collections::BTreeMap;

/// Highest `keel.format_version` this runtime understands.
pub const FORMAT_VERSION: u32 = 1;
pub const INPUT_Z: &str = "z";
pub const INPUT_CLASS: &str = "class";
pub const OUTPUT: &str = "x";

/// Maps the model's normalised output back to real units, per channel.
#[derive(Debug, Clone, PartialEq, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Modes {
    pub centres: Vec<[f64; 2]>,
    pub std: f64,
}

/// Everything `keel.*` says, parsed and checked.
#[derive(Debug, Clone)]
pub struct Metadata {
    pub format_version: u32,
    pub producer: String,
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
    /// Every property of the file, `keel.*` or not, for `keel-run info`.
    pub all: BTreeMap<String, String>,
}

impl Metadata {
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
        let format_version: u32 = parse("keel.format_version", get("keel.format_version")?)?;
        if format_version == 0 || format_version > FORMAT_VERSION {
            bail!(
                "metadata field `keel.format_version` is {format_version}; this keel-run reads version {FORMAT_VERSION} (upgrade keel-run)"
            );
        }
        let latent: usize = parse("keel.latent", get("keel.latent")?)?;
        let classes: Vec<String> = json("keel.classes", get("keel.classes")?)?;
        let output_shape: Vec<usize> = json("keel.output_shape", get("keel.output_shape")?)?;
        let denorm: Denorm = json("keel.denorm", get("keel.denorm")?)?;
        let columns: Vec<String> = match props.get("keel.columns") {
            Some(v) => json("keel.columns", v)?,
            None => Vec::new(),
        };
        let m = Metadata {
            format_version,
            producer: props.get("keel.producer").cloned().unwrap_or_default(),
            latent,
            classes,
            output_shape,
            columns,
            denorm,
            dataset: props.get("keel.dataset").cloned().unwrap_or_default(),
            recipe: props.get("keel.recipe").cloned().unwrap_or_default(),
            seed: parse("keel.seed", props.get("keel.seed").map_or("0", |s| s))?,
            step: parse("keel.step", props.get("keel.step").map_or("0", |s| s))?,
            metrics: match props.get("keel.metrics") {
                Some(v) => json("keel.metrics", v)?,
                None => serde_json::Value::Null,
            },
            config: props.get("keel.config").cloned().unwrap_or_default(),
            modes: match props.get("keel.modes") {
                Some(v) => Some(json("keel.modes", v)?),
                None => None,
            },
            all: props,
        };
        m.check()?;
        Ok(m)
    }

    fn check(&self) -> Result<()> {
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

/// Metadata of a conditional 2-class, `[2, 3]`-series generator for unit tests, with fields replaced.
#[cfg(test)]
pub(crate) fn test_props(extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut p: BTreeMap<String, String> = [
        ("keel.format_version", "1"),
        ("keel.latent", "4"),
        ("keel.classes", r#"["walk","run"]"#),
        ("keel.output_shape", "[2, 3]"),
        (
            "keel.denorm",
            r#"{"kind":"min_max","min":[0,10],"max":[2,30]}"#,
        ),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in extra {
        p.insert(k.to_string(), v.to_string());
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_metadata_parses_and_denormalises_per_channel() {
        let m = Metadata::from_props(test_props(&[])).unwrap();
        assert_eq!(m.sample_len(), 6);
        assert_eq!(m.class_index("run").unwrap(), 1);
        assert_eq!(m.column_names()[..4], ["c0_t0", "c0_t1", "c0_t2", "c1_t0"]);
        // min_max maps [-1, 1] onto [min, max] per channel; channel c covers T = 3 values.
        let mut v = vec![-1.0, 0.0, 1.0, -1.0, 0.0, 1.0];
        m.denorm.apply(&mut v, 3);
        assert_eq!(v, [0.0, 1.0, 2.0, 10.0, 20.0, 30.0]);
        let s = Denorm::MeanStd {
            mean: vec![1.0, -1.0],
            std: vec![2.0, 0.5],
        };
        let mut v = vec![1.0, 1.0, 2.0, 2.0];
        s.apply(&mut v, 1);
        assert_eq!(v, [3.0, -0.5, 5.0, 0.0]);
    }

    #[test]
    fn inconsistent_metadata_names_the_field() {
        let cases = [
            (("keel.latent", "x"), "`keel.latent`"),
            (("keel.output_shape", "[0]"), "`keel.output_shape`"),
            (("keel.classes", r#"["a","a"]"#), "lists `a` twice"),
            (("keel.columns", r#"["only one"]"#), "`keel.columns`"),
            (("keel.denorm", r#"{"kind":"log"}"#), "`keel.denorm`"),
            (
                ("keel.denorm", r#"{"kind":"mean_std","mean":[0],"std":[1]}"#),
                "1/1 entries for 2 channels",
            ),
            (("keel.format_version", "2"), "upgrade keel-run"),
        ];
        for ((k, v), needle) in cases {
            let e = Metadata::from_props(test_props(&[(k, v)])).unwrap_err();
            let e = format!("{e:#}");
            assert!(e.contains(needle), "{k}={v}: {e}");
        }
    }
}
