//! The named recipes shipped with Keel: TOML files in `trainer/recipes/`, built into the binary.

use anyhow::{anyhow, Result};

/// A named recipe shipped with Keel (`trainer/recipes/NAME.toml`).
pub struct Recipe {
    pub name: &'static str,
    pub toml: &'static str,
}

pub const DEFAULT_RECIPE: &str = "stable";

/// A recipe named `N` is the file `trainer/recipes/N.toml`, built into the binary.
macro_rules! recipe {
    ($name:literal) => {
        Recipe {
            name: $name,
            toml: include_str!(concat!("../../recipes/", $name, ".toml")),
        }
    };
}

pub const RECIPES: &[Recipe] = &[
    recipe!("stable"),
    recipe!("vanilla"),
    recipe!("wgan-clip"),
    recipe!("wgan-gp"),
    recipe!("sngan-hinge"),
    recipe!("r1"),
];

/// What a recipe changes for series data (longer outputs, few samples): `NAME.series.toml`.
pub const SERIES_OVERLAYS: &[Recipe] = &[Recipe {
    name: "stable",
    toml: include_str!("../../recipes/stable.series.toml"),
}];

pub fn recipe(name: &str) -> Result<&'static Recipe> {
    RECIPES.iter().find(|r| r.name == name).ok_or_else(|| {
        let names: Vec<_> = RECIPES.iter().map(|r| r.name).collect();
        anyhow!(
            "unknown recipe `{name}`; known recipes: {} (see `keel recipes`)",
            names.join(", ")
        )
    })
}
