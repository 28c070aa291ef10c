//! The run's two pictures: samples over the real data (`samples.png`: series per class and
//! channel, or 2-D points over the modes) and the losses with the watchdog's events marked
//! (`losses.png`).

use crate::artifacts::Row;
use crate::data::Dataset;
use crate::eval::{plot, series_plot};
use crate::rundir;
use crate::train::StepStats;
use crate::watch::Watchdog;
use anyhow::Result;
use std::path::Path;

/// `samples.png` from `shown`, generated rows in real units (class `i % classes` for row `i`).
pub(crate) fn samples(dir: &Path, data: &Dataset, shown: &[f32], title: &str) -> Result<()> {
    let path = dir.join(rundir::SAMPLES_PNG);
    if let Some(shape) = data.shape {
        let title = format!("{title} (real grey, generated colour)");
        let fake_labels: Vec<usize> = (0..shown.len() / data.dim)
            .map(|i| i % data.classes.len().max(1))
            .collect();
        series_plot::series_grid(
            &path,
            &title,
            shape,
            &data.classes,
            (&data.points, &data.labels),
            (shown, &fake_labels),
        )
    } else if data.dim >= 2 {
        let first2 = |rows: &[f32], n: usize| -> Vec<f32> {
            rows.chunks_exact(data.dim)
                .take(n)
                .flat_map(|r| [r[0], r[1]])
                .collect()
        };
        let modes = data
            .mixture
            .as_ref()
            .map(|m| m.centres.clone())
            .unwrap_or_default();
        plot::scatter(
            &path,
            title,
            &first2(shown, usize::MAX),
            &first2(&data.points, 2500),
            &modes,
        )
    } else {
        Ok(())
    }
}

/// `losses.png`: losses and D's outputs over the logged steps, each watchdog event marked where it
/// fired with what it did.
pub(crate) fn losses(
    dir: &Path,
    title: &str,
    history: &[Row],
    augmenting: bool,
    watchdog: Option<&Watchdog>,
) -> Result<()> {
    let steps: Vec<f64> = history.iter().map(|r| r.step as f64).collect();
    let col = |f: fn(&StepStats) -> f64| history.iter().map(|r| f(&r.stats)).collect();
    let mut series = vec![
        ("loss D", col(|s| s.loss_d)),
        ("loss G", col(|s| s.loss_g)),
        ("D(real)", col(|s| s.d_real)),
        ("D(fake)", col(|s| s.d_fake)),
    ];
    if augmenting {
        series.push(("augment p", col(|s| s.augment_p)));
    }
    let marks: Vec<(f64, String)> = watchdog
        .iter()
        .flat_map(|w| w.events())
        .map(|e| {
            let to = e.to_step.map_or(String::new(), |t| format!("→{t}"));
            (
                e.step as f64,
                format!("{} {}{to}", e.finding.kind.name(), e.action),
            )
        })
        .collect();
    plot::lines(
        &dir.join(rundir::LOSSES_PNG),
        title,
        &steps,
        &series,
        &marks,
    )
}
