//! Timing of the runtime on one model: latency per call at batch 1, throughput at batch 256 with
//! one and two threads (each thread runs whole batches on its own state, as `generate` does).

use crate::generate::batch_inputs;
use crate::model::Generator;
use anyhow::Result;
use serde::Serialize;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Serialize)]
pub struct Timing {
    pub batch: usize,
    pub threads: usize,
    /// Median wall time of one call, µs.
    pub median_us: f64,
    pub p90_us: f64,
    /// Samples per second over all threads, from the median call (as the onnxruntime peer reports).
    pub samples_per_s: f64,
}

/// Times `threads` threads each calling the batch-`batch` plan for about `budget`.
pub fn time(g: &Generator, batch: usize, threads: usize, budget: Duration) -> Result<Timing> {
    let plan = g.plan(batch)?;
    // Class 0, seed 0: timing does not depend on the values.
    let (z, class) = batch_inputs(&g.meta, 0, 0, 0, batch, batch);
    let input = g.inputs(batch, z, class)?;
    let per_thread: Vec<Result<Vec<f64>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let plan = plan.clone();
                let input = input.clone();
                s.spawn(move || -> Result<Vec<f64>> {
                    let mut state = plan.spawn()?;
                    // Warm-up: caches, allocator, branch predictors.
                    let warm = Instant::now();
                    while warm.elapsed() < budget / 10 {
                        state.run(input.clone())?;
                    }
                    let mut times = Vec::new();
                    let start = Instant::now();
                    while start.elapsed() < budget {
                        let t = Instant::now();
                        state.run(input.clone())?;
                        times.push(t.elapsed().as_secs_f64() * 1e6);
                    }
                    Ok(times)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("bench thread"))
            .collect()
    });
    let mut all = Vec::new();
    for r in per_thread {
        all.extend(r?);
    }
    all.sort_by(f64::total_cmp);
    let q = |p: f64| all[((all.len() - 1) as f64 * p).round() as usize];
    Ok(Timing {
        batch,
        threads,
        median_us: q(0.5),
        p90_us: q(0.9),
        samples_per_s: (batch * threads) as f64 * 1e6 / q(0.5),
    })
}
