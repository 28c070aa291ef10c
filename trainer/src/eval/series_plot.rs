//! Plots of series data: real against generated traces per class and channel, mean power spectra
//! per channel, and a 2-D PCA projection of whole series.

use super::plot::{canvas, chart, err, finish_at, register, FONT};
use anyhow::Result;
use plotters::prelude::*;
use std::path::Path;

const REAL: RGBColor = RGBColor(150, 150, 150);
const TRACES: usize = 5;

/// Rows `[classes or 1] × [channels]` of small charts: up to five real (grey) and five generated
/// (colour) traces of that class and channel.
pub fn series_grid(
    path: &Path,
    title: &str,
    shape: [usize; 2],
    classes: &[String],
    real: (&[f32], &[usize]),
    fake: (&[f32], &[usize]),
) -> Result<()> {
    register();
    let [c, t] = shape;
    let n = c * t;
    let rows = classes.len().max(1);
    let root = BitMapBackend::new(path, ((220 * c).max(440) as u32, (160 * rows + 40) as u32))
        .into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let root = root.titled(title, (FONT, 18)).map_err(err)?;
    let cells = root.split_evenly((rows, c));
    let pick = |(points, labels): (&[f32], &[usize]), k: usize| -> Vec<Vec<f32>> {
        points
            .chunks_exact(n)
            .enumerate()
            .filter(|(i, _)| labels.is_empty() || labels.get(*i) == Some(&k))
            .take(TRACES)
            .map(|(_, r)| r.to_vec())
            .collect()
    };
    for k in 0..rows {
        let (r, f) = (pick(real, k), pick(fake, k));
        for ch in 0..c {
            let seg = |s: &Vec<f32>| s[ch * t..(ch + 1) * t].to_vec();
            let (lo, hi) = range(r.iter().chain(&f).flat_map(seg));
            let name = classes.get(k).map_or(String::new(), |s| format!("{s} "));
            let mut chart = ChartBuilder::on(&cells[k * c + ch])
                .caption(format!("{name}c{ch}"), (FONT, 12))
                .margin(4)
                .x_label_area_size(14)
                .y_label_area_size(30)
                .build_cartesian_2d(0f64..(t.max(2) - 1) as f64, lo..hi)
                .map_err(err)?;
            chart
                .configure_mesh()
                .disable_mesh()
                .label_style((FONT, 9))
                .x_labels(3)
                .y_labels(3)
                .draw()
                .map_err(err)?;
            for s in &r {
                let pts = seg(s)
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| (i as f64, v as f64));
                chart
                    .draw_series(LineSeries::new(pts, REAL.stroke_width(1)))
                    .map_err(err)?;
            }
            for (j, s) in f.iter().enumerate() {
                let color = Palette99::pick(j).to_rgba();
                let pts = seg(s)
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| (i as f64, v as f64));
                chart
                    .draw_series(LineSeries::new(pts, color.stroke_width(1)))
                    .map_err(err)?;
            }
        }
    }
    root.present().map_err(err)?;
    Ok(())
}

/// Mean power spectrum (|DFT|², log10, without the mean's bin) of each channel, real against generated.
pub fn spectra(
    path: &Path,
    title: &str,
    shape: [usize; 2],
    real: &[f32],
    fake: &[f32],
) -> Result<()> {
    register();
    let [c, t] = shape;
    let (sr, sf) = (mean_spectrum(real, shape), mean_spectrum(fake, shape));
    let root = BitMapBackend::new(path, ((260 * c).max(520) as u32, 260)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let root = root.titled(title, (FONT, 18)).map_err(err)?;
    let cells = root.split_evenly((1, c));
    let bins = t / 2 + 1;
    for ch in 0..c {
        let (a, b) = (
            &sr[ch * bins..(ch + 1) * bins],
            &sf[ch * bins..(ch + 1) * bins],
        );
        // Bin 0 is the removed mean: leave it out of the plot.
        let log = |v: &[f64]| {
            v.iter()
                .skip(1)
                .map(|p| p.max(1e-12).log10())
                .collect::<Vec<_>>()
        };
        let (la, lb) = (log(a), log(b));
        let (lo, hi) = range(la.iter().chain(&lb).map(|&v| v as f32));
        let mut chart = ChartBuilder::on(&cells[ch])
            .caption(format!("c{ch}"), (FONT, 12))
            .margin(4)
            .x_label_area_size(20)
            .y_label_area_size(34)
            .build_cartesian_2d(0f64..0.5, lo..hi)
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("cycles/step")
            .label_style((FONT, 9))
            .draw()
            .map_err(err)?;
        let freq = |i: usize| (i + 1) as f64 / t as f64;
        chart
            .draw_series(LineSeries::new(
                la.iter().enumerate().map(|(i, &v)| (freq(i), v)),
                REAL.stroke_width(2),
            ))
            .map_err(err)?
            .label("real")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 12, y)], REAL));
        chart
            .draw_series(LineSeries::new(
                lb.iter().enumerate().map(|(i, &v)| (freq(i), v)),
                BLUE.stroke_width(1),
            ))
            .map_err(err)?
            .label("generated")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 12, y)], BLUE));
        if ch == 0 {
            chart
                .configure_series_labels()
                .label_font((FONT, 10))
                .background_style(WHITE.mix(0.8))
                .draw()
                .map_err(err)?;
        }
    }
    root.present().map_err(err)?;
    Ok(())
}

/// Per channel, the mean over rows of |DFT_k|² for k = 0..=T/2 (mean removed per row).
pub fn mean_spectrum(points: &[f32], shape: [usize; 2]) -> Vec<f64> {
    let [c, t] = shape;
    let bins = t / 2 + 1;
    let mut out = vec![0.0; c * bins];
    let rows = points.len() / (c * t);
    for row in points.chunks_exact(c * t) {
        for ch in 0..c {
            let s = &row[ch * t..(ch + 1) * t];
            let mean = s.iter().map(|&v| v as f64).sum::<f64>() / t as f64;
            for k in 0..bins {
                let (mut re, mut im) = (0.0, 0.0);
                for (i, &v) in s.iter().enumerate() {
                    let a = -2.0 * std::f64::consts::PI * (k * i) as f64 / t as f64;
                    re += (v as f64 - mean) * a.cos();
                    im += (v as f64 - mean) * a.sin();
                }
                out[ch * bins + k] += (re * re + im * im) / rows.max(1) as f64;
            }
        }
    }
    out
}

/// Real (grey) and generated (blue) series projected on the first two principal components of the
/// real ones.
pub fn projection(path: &Path, title: &str, dim: usize, real: &[f32], fake: &[f32]) -> Result<()> {
    register();
    let (mean, axes) = pca2(real, dim);
    let project = |pts: &[f32]| -> Vec<(f64, f64)> {
        pts.chunks_exact(dim)
            .map(|r| {
                let d: Vec<f64> = r.iter().zip(&mean).map(|(&v, m)| v as f64 - m).collect();
                let p = |a: &Vec<f64>| d.iter().zip(a).map(|(x, y)| x * y).sum::<f64>();
                (p(&axes[0]), p(&axes[1]))
            })
            .collect()
    };
    let (pr, pf) = (project(real), project(fake));
    let (x0, x1) = range(pr.iter().chain(&pf).map(|p| p.0 as f32));
    let (y0, y1) = range(pr.iter().chain(&pf).map(|p| p.1 as f32));
    let root = canvas(path, (560, 560))?;
    let mut chart = chart(&root, (title, 18), 40, x0..x1, y0..y1)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("PC 1 (real)")
        .y_desc("PC 2 (real)")
        .label_style((FONT, 11))
        .draw()
        .map_err(err)?;
    chart
        .draw_series(pr.iter().map(|&p| Circle::new(p, 3, REAL.filled())))
        .map_err(err)?
        .label("real")
        .legend(|(x, y)| Circle::new((x, y), 3, REAL.filled()));
    chart
        .draw_series(
            pf.iter()
                .map(|&p| Circle::new(p, 2, BLUE.mix(0.5).filled())),
        )
        .map_err(err)?
        .label("generated")
        .legend(|(x, y)| Circle::new((x, y), 3, BLUE.filled()));
    finish_at(&root, &mut chart, 11)
}

/// Mean and the top two principal axes (power iteration with deflation) of `dim`-wide rows.
fn pca2(points: &[f32], dim: usize) -> (Vec<f64>, [Vec<f64>; 2]) {
    let n = (points.len() / dim).max(1) as f64;
    let mut mean = vec![0.0; dim];
    for r in points.chunks_exact(dim) {
        for (m, &v) in mean.iter_mut().zip(r) {
            *m += v as f64 / n;
        }
    }
    let centred: Vec<Vec<f64>> = points
        .chunks_exact(dim)
        .map(|r| r.iter().zip(&mean).map(|(&v, m)| v as f64 - m).collect())
        .collect();
    let mut axes: Vec<Vec<f64>> = Vec::new();
    for a in 0..2 {
        let mut v: Vec<f64> = (0..dim)
            .map(|i| ((i * 7 + a * 3) % 11) as f64 + 1.0)
            .collect();
        for _ in 0..100 {
            let mut w = vec![0.0; dim];
            for r in &centred {
                let dot: f64 = r.iter().zip(&v).map(|(x, y)| x * y).sum();
                for (wi, x) in w.iter_mut().zip(r) {
                    *wi += dot * x;
                }
            }
            for prev in &axes {
                let dot: f64 = w.iter().zip(prev).map(|(x, y)| x * y).sum();
                w.iter_mut().zip(prev).for_each(|(x, p)| *x -= dot * p);
            }
            let norm = w.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-30);
            v = w.into_iter().map(|x| x / norm).collect();
        }
        axes.push(v);
    }
    let [a, b]: [Vec<f64>; 2] = axes.try_into().expect("two axes");
    (mean, [a, b])
}

/// A padded (lo, hi) over the finite values.
fn range(values: impl Iterator<Item = f32>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v as f64);
        hi = hi.max(v as f64);
    }
    if !lo.is_finite() {
        return (-1.0, 1.0);
    }
    let pad = 0.05 * (hi - lo).max(1e-6);
    (lo - pad, hi + pad)
}
