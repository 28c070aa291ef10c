//! PNG plots of a run (plotters, bitmap backend, an embedded DejaVu Sans so no system fonts are needed).

use anyhow::{anyhow, Result};
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

pub(crate) const FONT: &str = "sans-serif";

pub(crate) fn register() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let bytes: &'static [u8] = include_bytes!("../../assets/DejaVuSans.ttf");
        plotters::style::register_font(FONT, FontStyle::Normal, bytes)
            .map_err(|_| ())
            .expect("embedded font parses");
    });
}

pub(crate) fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("plotting failed: {e:?}")
}

/// Generated points (blue) over the real modes (red crosses) and, faintly, real samples.
pub fn scatter(
    path: &Path,
    title: &str,
    samples: &[f32],
    real: &[f32],
    modes: &[[f64; 2]],
) -> Result<()> {
    register();
    let all = samples.chunks_exact(2).chain(real.chunks_exact(2));
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for p in all.clone() {
        for &v in p {
            if v.is_finite() {
                lo = lo.min(v as f64);
                hi = hi.max(v as f64);
            }
        }
    }
    for c in modes {
        lo = lo.min(c[0].min(c[1]));
        hi = hi.max(c[0].max(c[1]));
    }
    if !lo.is_finite() {
        (lo, hi) = (-1.0, 1.0);
    }
    let pad = 0.1 * (hi - lo).max(1e-3);
    let (lo, hi) = (lo - pad, hi + pad);
    let root = BitMapBackend::new(path, (640, 640)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 20))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(40)
        .build_cartesian_2d(lo..hi, lo..hi)
        .map_err(err)?;
    chart
        .configure_mesh()
        .light_line_style(RGBColor(242, 242, 242))
        .label_style((FONT, 12))
        .draw()
        .map_err(err)?;
    let pt = |p: &[f32]| (p[0] as f64, p[1] as f64);
    chart
        .draw_series(
            real.chunks_exact(2)
                .map(|p| Circle::new(pt(p), 1, RGBColor(200, 200, 200).filled())),
        )
        .map_err(err)?
        .label("real")
        .legend(|(x, y)| Circle::new((x, y), 3, RGBColor(200, 200, 200).filled()));
    chart
        .draw_series(
            samples
                .chunks_exact(2)
                .filter(|p| p.iter().all(|v| v.is_finite()))
                .map(|p| Circle::new(pt(p), 1, BLUE.mix(0.5).filled())),
        )
        .map_err(err)?
        .label("generated")
        .legend(|(x, y)| Circle::new((x, y), 3, BLUE.filled()));
    chart
        .draw_series(
            modes
                .iter()
                .map(|c| Cross::new((c[0], c[1]), 4, RED.stroke_width(2))),
        )
        .map_err(err)?
        .label("mode centres")
        .legend(|(x, y)| Cross::new((x, y), 4, RED.stroke_width(2)));
    finish(&root, &mut chart)?;
    Ok(())
}

/// Named series over the step axis (losses, gradient norms), on one chart.
pub fn lines(path: &Path, title: &str, steps: &[f64], series: &[(&str, Vec<f64>)]) -> Result<()> {
    register();
    let (x0, x1) = (
        steps.first().copied().unwrap_or(0.0),
        steps.last().copied().unwrap_or(1.0).max(1.0),
    );
    let finite = series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .filter(|v| v.is_finite());
    let (mut lo, mut hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    if !lo.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    let pad = 0.05 * (hi - lo).max(1e-6);
    let root = BitMapBackend::new(path, (900, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 20))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d(x0..x1, (lo - pad)..(hi + pad))
        .map_err(err)?;
    chart
        .configure_mesh()
        .light_line_style(RGBColor(242, 242, 242))
        .x_desc("generator step")
        .label_style((FONT, 12))
        .draw()
        .map_err(err)?;
    for (i, (name, values)) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let pts = steps
            .iter()
            .copied()
            .zip(values.iter().copied())
            .filter(|(_, v)| v.is_finite());
        chart
            .draw_series(LineSeries::new(pts, color.stroke_width(1)))
            .map_err(err)?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], color));
    }
    finish(&root, &mut chart)?;
    Ok(())
}

/// Draws the legend and writes the image.
fn finish<'a, X: Ranged<ValueType = f64>, Y: Ranged<ValueType = f64>>(
    root: &DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>,
    chart: &mut ChartContext<'a, BitMapBackend<'a>, Cartesian2d<X, Y>>,
) -> Result<()> {
    chart
        .configure_series_labels()
        .label_font((FONT, 12))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}
