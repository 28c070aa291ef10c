//! The layering `defaults ← recipe ← --config file ← --set key=value`: each layer is merged into a
//! TOML table checked against the defaults' keys, so an unknown key is an error that lists the valid ones.

use super::recipes::{recipe, SERIES_OVERLAYS};
use super::TrainConfig;
use anyhow::{anyhow, bail, Context, Result};
use std::path::Path;

/// Builds a configuration layer by layer; each layer is checked for unknown keys as it is added.
pub struct ConfigBuilder {
    table: toml::Table,
    known: toml::Table,
}

impl ConfigBuilder {
    pub fn new() -> Self {
        let known =
            toml::Table::try_from(TrainConfig::default()).expect("default config serialises");
        Self {
            table: known.clone(),
            known,
        }
    }

    /// Starts from a named recipe.
    pub fn recipe(mut self, name: &str) -> Result<Self> {
        let r = recipe(name)?;
        let t: toml::Table =
            toml::from_str(r.toml).with_context(|| format!("recipe `{name}` is not valid TOML"))?;
        self.merge(t, &format!("recipe `{name}`"))?;
        Ok(self)
    }

    /// A recipe, then its series overlay (`NAME.series.toml`) when training on series and it has one.
    pub fn recipe_for(self, name: &str, series: bool) -> Result<Self> {
        let mut b = self.recipe(name)?;
        if series {
            if let Some(o) = SERIES_OVERLAYS.iter().find(|r| r.name == name) {
                let t: toml::Table = toml::from_str(o.toml)
                    .with_context(|| format!("series overlay of `{name}` is not valid TOML"))?;
                b.merge(t, &format!("recipe `{name}` (series)"))?;
            }
        }
        Ok(b)
    }

    pub fn file(mut self, path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        let t: toml::Table =
            toml::from_str(&text).map_err(|e| anyhow!("config file {}: {e}", path.display()))?;
        self.merge(t, &format!("config file {}", path.display()))?;
        Ok(self)
    }

    /// Applies one `section.key=value` override; the value is parsed as TOML (bare words are strings).
    pub fn set(mut self, assignment: &str) -> Result<Self> {
        let (key, value) = assignment.split_once('=').ok_or_else(|| {
            anyhow!("--set `{assignment}`: expected key=value, e.g. --set optim.lr_g=2e-4")
        })?;
        let key = key.trim();
        let value = value.trim();
        let parsed: toml::Value = match toml::from_str::<toml::Table>(&format!("v = {value}")) {
            Ok(mut t) => t.remove("v").expect("just parsed"),
            Err(_) => toml::Value::String(value.to_string()),
        };
        let mut table = toml::Table::new();
        let mut parts: Vec<&str> = key.split('.').collect();
        let last = parts.pop().unwrap_or_default();
        let mut cursor = &mut table;
        for p in parts {
            cursor = cursor
                .entry(p.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .expect("fresh table");
        }
        cursor.insert(last.to_string(), parsed);
        self.merge(table, &format!("--set {key}"))?;
        Ok(self)
    }

    pub fn build(self) -> Result<TrainConfig> {
        let cfg: TrainConfig = self
            .table
            .try_into()
            .map_err(|e| anyhow!("invalid configuration: {e}"))?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn merge(&mut self, layer: toml::Table, origin: &str) -> Result<()> {
        merge_checked(&mut self.table, &self.known, layer, "", origin)
    }
}

impl Default for ConfigBuilder {
    fn default() -> Self {
        Self::new()
    }
}

fn merge_checked(
    dst: &mut toml::Table,
    known: &toml::Table,
    layer: toml::Table,
    prefix: &str,
    origin: &str,
) -> Result<()> {
    for (k, v) in layer {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        let Some(known_v) = known.get(&k) else {
            let mut keys: Vec<_> = known
                .keys()
                .map(|k| {
                    if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    }
                })
                .collect();
            keys.sort();
            bail!(
                "{origin}: unknown config key `{path}`; valid keys here: {}",
                keys.join(", ")
            );
        };
        match (known_v, v) {
            (toml::Value::Table(kt), toml::Value::Table(vt)) => {
                let d = dst
                    .get_mut(&k)
                    .and_then(|x| x.as_table_mut())
                    .expect("sections exist in defaults");
                merge_checked(d, kt, vt, &path, origin)?;
            }
            (toml::Value::Table(_), _) => bail!("{origin}: `{path}` is a section, not a value"),
            (_, v @ toml::Value::Table(_)) => {
                bail!("{origin}: `{path}` is a value, not a section (got {v})")
            }
            (kv, v) => {
                // Let integers stand for floats (`lr_g=1` means 1.0).
                let v = match (kv, v) {
                    (toml::Value::Float(_), toml::Value::Integer(i)) => {
                        toml::Value::Float(i as f64)
                    }
                    (_, v) => v,
                };
                // `train.steps` is a number or the word "auto".
                let either = path == "train.steps"
                    && matches!(v, toml::Value::Integer(_) | toml::Value::String(_));
                if !either && std::mem::discriminant(kv) != std::mem::discriminant(&v) {
                    bail!("{origin}: `{path}` expects a {}, got `{v}`", kv.type_str());
                }
                dst.insert(k, v);
            }
        }
    }
    Ok(())
}
