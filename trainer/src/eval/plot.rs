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

pub(crate) type Canvas<'b> = DrawingArea<BitMapBackend<'b>, plotters::coord::Shift>;
pub(crate) type Chart<'a, 'b> = ChartContext<
    'a,
    BitMapBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// A white canvas of `size` pixels that will be written to `path`.
pub(crate) fn canvas(path: &Path, size: (u32, u32)) -> Result<Canvas<'_>> {
    let root = BitMapBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    Ok(root)
}

/// A chart over `x` × `y` filling `root`, with `title` at `caption` points and `y_labels` pixels
/// for the y axis's labels.
pub(crate) fn chart<'a, 'b>(
    root: &'a Canvas<'b>,
    (title, caption): (&str, u32),
    y_labels: u32,
    x: std::ops::Range<f64>,
    y: std::ops::Range<f64>,
) -> Result<Chart<'a, 'b>> {
    ChartBuilder::on(root)
        .caption(title, (FONT, caption))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(y_labels)
        .build_cartesian_2d(x, y)
        .map_err(err)
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
    let root = canvas(path, (640, 640))?;
    let mut chart = chart(&root, (title, 20), 40, lo..hi, lo..hi)?;
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
    finish_at(&root, &mut chart, 12)?;
    Ok(())
}

/// Named series over the step axis (losses, gradient norms), on one chart, with labelled vertical
/// marks (the watchdog's events).
pub fn lines(
    path: &Path,
    title: &str,
    steps: &[f64],
    series: &[(&str, Vec<f64>)],
    marks: &[(f64, String)],
) -> Result<()> {
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
    let root = canvas(path, (900, 480))?;
    let mut chart = chart(&root, (title, 20), 50, x0..x1, (lo - pad)..(hi + pad))?;
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
    let (y0, y1) = (lo - pad, hi + pad);
    for (i, (x, label)) in marks.iter().enumerate() {
        let red = RGBColor(200, 30, 30);
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(*x, y0), (*x, y1)],
                red.stroke_width(2),
            )))
            .map_err(err)?;
        // Labels step down the chart so neighbouring marks stay readable.
        let y = y1 - (y1 - y0) * (0.04 + 0.06 * (i % 8) as f64);
        chart
            .draw_series(std::iter::once(Text::new(
                label.clone(),
                (*x, y),
                (FONT, 12).into_font().color(&red),
            )))
            .map_err(err)?;
    }
    finish_at(&root, &mut chart, 12)?;
    Ok(())
}

/// One arm at one k: mean and std (%), or absent.
pub type Band = Option<(f64, f64)>;

/// Accuracy (%) per arm against k (a category axis: `ks` labels), the mean as a line with points
/// and mean ± std as a band.
pub fn bands(path: &Path, title: &str, ks: &[String], arms: &[(&str, Vec<Band>)]) -> Result<()> {
    register();
    let values = arms
        .iter()
        .flat_map(|(_, v)| v.iter().flatten().flat_map(|(m, s)| [m - s, m + s]));
    let (lo, hi) = values.fold((100f64, 0f64), |(a, b), v| (a.min(v), b.max(v)));
    let root = canvas(path, (900, 520))?;
    let n = ks.len().max(1) as f64;
    let mut chart = chart(
        &root,
        (title, 18),
        50,
        -0.3..(n - 0.7),
        (lo - 2.0).max(0.0)..(hi + 2.0).min(100.5),
    )?;
    let labels = ks.to_vec();
    chart
        .configure_mesh()
        .light_line_style(RGBColor(242, 242, 242))
        .x_desc("k real series per class")
        .y_desc("test accuracy (%)")
        .x_labels(ks.len())
        .x_label_formatter(&move |x| {
            let i = x.round();
            match labels.get(i as usize) {
                Some(l) if (x - i).abs() < 1e-6 && i >= 0.0 => l.clone(),
                _ => String::new(),
            }
        })
        .label_style((FONT, 12))
        .draw()
        .map_err(err)?;
    for (a, (name, v)) in arms.iter().enumerate() {
        let color = Palette99::pick(a).to_rgba();
        // A small offset per arm keeps the bands of one k apart; an arm absent at some k is
        // drawn where it exists.
        let x = |i: usize| i as f64 + 0.04 * (a as f64 - arms.len() as f64 / 2.0);
        let v: Vec<(f64, f64, f64)> = v
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.map(|(m, s)| (x(i), m, s)))
            .collect();
        let band: Vec<(f64, f64)> = v
            .iter()
            .map(|(x, m, s)| (*x, m + s))
            .chain(v.iter().rev().map(|(x, m, s)| (*x, m - s)))
            .collect();
        chart
            .draw_series(std::iter::once(Polygon::new(
                band,
                color.mix(0.12).filled(),
            )))
            .map_err(err)?;
        let line: Vec<(f64, f64)> = v.iter().map(|(x, m, _)| (*x, *m)).collect();
        chart
            .draw_series(LineSeries::new(line.clone(), color.stroke_width(2)))
            .map_err(err)?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], color));
        chart
            .draw_series(line.into_iter().map(|p| Circle::new(p, 3, color.filled())))
            .map_err(err)?;
    }
    finish_at(&root, &mut chart, 12)?;
    Ok(())
}

/// Draws the legend (labels at `font` points) and writes the image.
pub(crate) fn finish_at<'a, 'b: 'a, X: Ranged<ValueType = f64>, Y: Ranged<ValueType = f64>>(
    root: &Canvas<'b>,
    chart: &mut ChartContext<'a, BitMapBackend<'b>, Cartesian2d<X, Y>>,
    font: u32,
) -> Result<()> {
    chart
        .configure_series_labels()
        .label_font((FONT, font))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

/// A grid of success rates: one row per label, one column per grid point, each cell coloured from
/// red (0 %) to green (100 %) and labelled `k/n`. `cells[row][col]` is (successes, runs).
pub fn heatmap(
    path: &Path,
    title: &str,
    rows: &[String],
    cols: &[String],
    cells: &[Vec<(usize, usize)>],
) -> Result<()> {
    register();
    let cell_w = 150u32;
    let cell_h = 44u32;
    let left = 220u32;
    let top = 50u32;
    let w = left + cell_w * cols.len().max(1) as u32 + 20;
    let h = top + 40 + cell_h * rows.len().max(1) as u32;
    let root = BitMapBackend::new(path, (w, h)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let text = |s: &str, x: u32, y: u32, size: u32| {
        Text::new(
            s.to_string(),
            (x as i32, y as i32),
            (FONT, size).into_font().color(&BLACK),
        )
    };
    root.draw(&text(title, 10, 10, 20)).map_err(err)?;
    for (j, c) in cols.iter().enumerate() {
        root.draw(&text(c, left + cell_w * j as u32 + 8, top + 8, 14))
            .map_err(err)?;
    }
    for (i, r) in rows.iter().enumerate() {
        let y = top + 40 + cell_h * i as u32;
        root.draw(&text(r, 10, y + 14, 14)).map_err(err)?;
        for (j, &(k, n)) in cells[i].iter().enumerate() {
            let x = left + cell_w * j as u32;
            let rate = if n == 0 { 0.0 } else { k as f64 / n as f64 };
            let fill = if n == 0 {
                RGBColor(230, 230, 230)
            } else {
                RGBColor(
                    (230.0 * (1.0 - rate) + 40.0 * rate) as u8,
                    (60.0 * (1.0 - rate) + 170.0 * rate) as u8,
                    60,
                )
            };
            root.draw(&Rectangle::new(
                [
                    (x as i32 + 1, y as i32 + 1),
                    ((x + cell_w) as i32 - 1, (y + cell_h) as i32 - 1),
                ],
                fill.filled(),
            ))
            .map_err(err)?;
            let label = if n == 0 {
                "–".to_string()
            } else {
                format!("{k}/{n}  {:.0} %", 100.0 * rate)
            };
            root.draw(&Text::new(
                label,
                (x as i32 + 12, y as i32 + 13),
                (FONT, 15).into_font().color(&WHITE),
            ))
            .map_err(err)?;
        }
    }
    root.present().map_err(err)?;
    Ok(())
}
