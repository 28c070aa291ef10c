use anyhow::{anyhow, bail, Result};
use clap::Args;
use keel_firmware::Model;
use keel_runtime::adapt::{
    export_set as draw_set, provenance_names, remap_labels, simulate, Windows,
};
use keel_runtime::output::Destination;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct AdaptArgs {
    /// The int8 generator (`.kq8`, from `keel-run quantize`).
    pub model: PathBuf,
    /// Labelled windows: a built-in set (`basicmotions`, `arrowhead`, `japanesevowels`), a
    /// labelled-series CSV or a UEA `.ts` file. Its test split plays the user's recordings (the
    /// generator was trained on the training split).
    #[arg(long)]
    pub data: String,
    /// Real windows per class the device learns from (each draw takes them from the test split;
    /// the rest of it is classified).
    #[arg(long, value_delimiter = ',', default_value = "2,5")]
    pub k: Vec<usize>,
    /// Draws of the k windows.
    #[arg(long, default_value_t = 10)]
    pub draws: usize,
    /// Generated windows added per class.
    #[arg(long, default_value_t = 20)]
    pub generated: usize,
    /// Seed of the draws, the generated windows and the feature extractor.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Write the figures as JSON here (atomically), beside the table on stdout.
    #[arg(long)]
    pub json: Option<String>,
    /// Write draw 1 of the first k as an adaptation set (`.kad`) for a board
    /// (`KEEL_ADAPT=FILE` when building it): the device then runs that very draw.
    #[arg(long)]
    pub export_set: Option<String>,
}

pub fn run(a: AdaptArgs) -> Result<()> {
    if a.draws == 0 || a.k.contains(&0) {
        bail!("--draws and every --k must be at least 1");
    }
    let bytes = keel_runtime::quantize::read_kq8(&a.model)?;
    let m = Model::parse(&bytes).map_err(|e| anyhow!("{}: {e}", a.model.display()))?;
    let data = keel_data::load(&a.data, a.seed)?;
    let Some(test) = &data.test else {
        bail!(
            "{}: no test split: adaptation draws the user's windows from it",
            a.data
        );
    };
    // The data's classes by name onto the model's (a model without names: by index).
    let names = provenance_names(&m, "classes");
    let labels: Vec<usize> = if names.is_empty() {
        test.labels.clone()
    } else {
        let map = remap_labels(&names, &data.classes)?;
        test.labels.iter().map(|&l| map[l]).collect()
    };
    let windows = Windows {
        points: &test.points,
        labels: &labels,
    };
    let r = simulate(&m, &windows, &a.k, a.draws, a.generated, a.seed)
        .map_err(|e| anyhow!("{}: {e:#}", a.model.display()))?;
    println!(
        "{}: {} draws, {} generated windows per class, seed {}",
        a.data, r.draws, r.generated_per_class, r.seed
    );
    println!(
        "k    real only        + generated      gain (Wilcoxon p; wins/ties/losses)  generated weight (median)"
    );
    for row in &r.rows {
        println!(
            "{:<4} {:>5.1} % ± {:<5.1}  {:>5.1} % ± {:<5.1}  {:+.1} (p {:.3}; {}/{}/{})      {}",
            row.k,
            100.0 * row.real_only.mean,
            100.0 * row.real_only.std,
            100.0 * row.with_generated.mean,
            100.0 * row.with_generated.std,
            100.0 * row.gain.mean_diff,
            row.gain.p_value,
            row.gain.wins,
            row.gain.ties,
            row.gain.losses,
            median(&row.weights)
        );
    }
    if let Some(path) = &a.export_set {
        let set = draw_set(&m, &windows, a.k[0], a.generated, a.seed)
            .map_err(|e| anyhow!("{}: {e:#}", a.model.display()))?;
        let mut out = Destination::open(path)?;
        out.write_bytes(&set)?;
        out.finish()?;
        let row = &r.rows[0];
        println!(
            "adaptation set for a board: {path} (k = {}, draw 1: {} of {} right with real windows only, {} with generated)",
            row.k,
            (row.per_draw[0][0] * row.tested as f64).round(),
            row.tested,
            (row.per_draw[1][0] * row.tested as f64).round()
        );
    }
    if let Some(path) = &a.json {
        let mut out = Destination::open(path)?;
        out.write_bytes(serde_json::to_string_pretty(&r)?.as_bytes())?;
        out.finish()?;
    }
    Ok(())
}

fn median(v: &[f32]) -> f32 {
    let mut v = v.to_vec();
    v.sort_by(f32::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}
