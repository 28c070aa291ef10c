//! What a finished run leaves in its directory: the resolved config, `metrics.csv`, the EMA
//! generator with `generator.json`, the raw networks, the plots, `summary.json` and the ONNX export.

use super::{plots, Session};
use crate::artifacts::{dependency_version, metrics_csv, GeneratorMeta, Summary, ONNX_FILE};
use crate::export::{export_generator, ExportInfo};
use crate::rundir::{self, write_atomic};
use crate::train::save_module;
use anyhow::Result;
use burn::module::Module;

/// Writes every output of the finished session `s`; returns its summary.
pub(super) fn write(s: &Session) -> Result<Summary> {
    let train_seconds = s.train_seconds();
    let (cfg, data, t, dir) = (s.cfg, s.data, &s.trainer, s.dir);
    // Steps trained; `t.step` is the step of the state kept (the same unless `keep_best` chose).
    let steps = s.kept_from.unwrap_or(t.step);
    write_atomic(&dir.path(rundir::CONFIG), cfg.to_toml().as_bytes())?;
    write_atomic(
        &dir.path(rundir::METRICS),
        metrics_csv(&s.history).as_bytes(),
    )?;
    let meta = GeneratorMeta {
        dataset: data.name.clone(),
        output_dim: data.dim,
        columns: data.columns.clone(),
        classes: data.classes.clone(),
        normalizer: s.normalizer.clone(),
        mixture: data.mixture.clone(),
        shape: data.shape,
        source: data.source.clone(),
        seed: cfg.train.seed,
        step: t.step,
    };
    write_atomic(
        &dir.path(rundir::GENERATOR_META),
        serde_json::to_string_pretty(&meta)?.as_bytes(),
    )?;
    let g = t.sampling_generator();
    save_module(g.clone(), &dir.path(rundir::GENERATOR))?;
    save_module(t.g.valid(), &dir.path(rundir::GENERATOR_RAW))?;
    save_module(t.d.valid(), &dir.path(rundir::DISCRIMINATOR))?;

    let recipe = &s.opts.recipe;
    let title = format!(
        "{} · {recipe} · seed {} · step {}",
        data.name, cfg.train.seed, t.step
    );
    plots::samples(&dir.path(""), data, &s.shown_samples(&g), &title)?;
    let augmenting = t.augmenter.is_some();
    let title = format!("losses · {} · {recipe}", data.name);
    let w = s.watchdog.as_ref();
    plots::losses(&dir.path(""), &title, &s.history, augmenting, w)?;

    let watch = w.map(|w| {
        let mut summary = w.summary(t, s.gave_up.as_deref());
        summary.injected = s.opts.faults.iter().map(|f| f.to_string()).collect();
        summary
    });
    let summary = Summary {
        keel_version: env!("CARGO_PKG_VERSION").to_string(),
        burn_version: dependency_version("burn"),
        dependencies: env!("KEEL_DEP_VERSIONS").to_string(),
        dataset: data.name.clone(),
        recipe: recipe.clone(),
        seed: cfg.train.seed,
        steps,
        train_seconds,
        generator_steps_per_second: steps as f64 / train_seconds.max(1e-9),
        final_metrics: s.latest.clone(),
        final_loss_d: s.last.loss_d,
        final_loss_g: s.last.loss_g,
        watch,
        convergence: s.convergence_summary(),
    };
    write_atomic(
        &dir.path(rundir::SUMMARY),
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    )?;
    let info = ExportInfo {
        meta: &meta,
        config: cfg,
        recipe,
        metrics: serde_json::to_value(&summary.final_metrics)?,
    };
    write_atomic(&dir.path(ONNX_FILE), &export_generator(&g, &info)?)?;
    Ok(summary)
}
