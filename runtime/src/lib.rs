//! Keel's runtime: load a generator exported by `keel export` and generate labelled samples with tract.
//! No burn here: the pipeline is `Generator::load` → `Generator::plan(batch)` (cached) → `generate`.

pub mod adapt;
pub mod bench;
pub mod generate;
pub mod meta;
pub mod model;
pub mod output;
pub mod quantize;

pub use generate::{generate, ClassChoice, Request};
pub use meta::Metadata;
pub use model::Generator;
