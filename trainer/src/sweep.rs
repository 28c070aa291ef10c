//! The stability sweep: recipes × datasets × grid values × seeds, each a `keel train` run judged by
//! its dataset's success rule; sharded for clusters (`--shard I/N`) and merged afterwards.

use crate::artifacts::Summary;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One axis of the grid: a config key (or `lr`) and its values, as written on the command line.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    pub key: String,
    pub values: Vec<String>,
}

impl std::str::FromStr for Axis {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        let Some((key, values)) = s.split_once('=') else {
            bail!("--grid `{s}`: expected KEY=V1,V2,…, e.g. lr=1e-4,3e-4,1e-3");
        };
        let values: Vec<String> = values
            .split(',')
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect();
        if key.trim().is_empty() || values.is_empty() {
            bail!("--grid `{s}`: needs a key and at least one value");
        }
        Ok(Axis {
            key: key.trim().to_string(),
            values,
        })
    }
}

/// The seeds of every grid point: `N` is seeds 0..N, `A..B` seeds A to B − 1 (to add seeds to a
/// sweep, or split one by seed across machines, and join the parts with `keel sweep merge`).
#[derive(Debug, Clone, PartialEq)]
pub struct Seeds(pub std::ops::Range<u64>);

impl std::str::FromStr for Seeds {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        let num = |v: &str| {
            v.trim()
                .parse::<u64>()
                .with_context(|| format!("--seeds `{s}`: `{v}` is not a seed number"))
        };
        let range = match s.split_once("..") {
            Some((a, b)) => num(a)?..num(b)?,
            None => 0..num(s)?,
        };
        if range.is_empty() {
            bail!("--seeds `{s}`: no seed in it (N for seeds 0..N, A..B for seeds A to B − 1)");
        }
        Ok(Seeds(range))
    }
}

impl std::fmt::Display for Seeds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.start {
            0 => write!(f, "{}", self.0.end),
            a => write!(f, "{a}..{}", self.0.end),
        }
    }
}

/// One run of the sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub recipe: String,
    pub data: String,
    /// `(key, value)` per axis, in axis order.
    pub point: Vec<(String, String)>,
    pub seed: u64,
}

impl Job {
    /// The grid point as `lr=1e-4 train.n_critic=2`.
    pub fn point_label(&self) -> String {
        let v: Vec<String> = self.point.iter().map(|(k, v)| format!("{k}={v}")).collect();
        if v.is_empty() {
            "default".into()
        } else {
            v.join(" ")
        }
    }

    /// Directory name of the run: `grid25-stable-lr1e-4-s3`.
    pub fn name(&self) -> String {
        let mut n = format!("{}-{}", self.data, self.recipe);
        for (k, v) in &self.point {
            let k = k.rsplit('.').next().unwrap_or(k);
            n.push_str(&format!("-{k}{v}"));
        }
        let n: String = n
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("{n}-s{}", self.seed)
    }

    /// `--set` assignments for this run. `lr` sets both learning rates, keeping the recipe's
    /// lr_d / lr_g ratio (TTUR); any other key is a config key.
    pub fn sets(&self, recipe_lr: (f64, f64)) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for (k, v) in &self.point {
            if k == "lr" {
                let lr: f64 = v
                    .parse()
                    .with_context(|| format!("--grid lr: `{v}` is not a number"))?;
                let ratio = recipe_lr.1 / recipe_lr.0;
                out.push(format!("optim.lr_g={lr:e}"));
                out.push(format!("optim.lr_d={:e}", lr * ratio));
            } else {
                out.push(format!("{k}={v}"));
            }
        }
        Ok(out)
    }
}

/// Every run, in a fixed order: recipe, data, grid point (first axis slowest), seed.
pub fn expand(recipes: &[String], data: &[String], axes: &[Axis], seeds: &Seeds) -> Vec<Job> {
    let mut points: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for a in axes {
        points = points
            .into_iter()
            .flat_map(|p| {
                a.values.iter().map(move |v| {
                    let mut p = p.clone();
                    p.push((a.key.clone(), v.clone()));
                    p
                })
            })
            .collect();
    }
    let mut jobs = Vec::new();
    for r in recipes {
        for d in data {
            for p in &points {
                for seed in seeds.0.clone() {
                    jobs.push(Job {
                        recipe: r.clone(),
                        data: d.clone(),
                        point: p.clone(),
                        seed,
                    });
                }
            }
        }
    }
    jobs
}

/// `I/N`: this process runs jobs i with i mod N = I (0-based, as Slurm array and Kubernetes
/// indexed-Job indices are).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        let parsed = s
            .split_once('/')
            .and_then(|(i, n)| Some((i.trim().parse().ok()?, n.trim().parse().ok()?)));
        match parsed {
            Some((index, count)) if count > 0 && index < count => Ok(Shard { index, count }),
            _ => bail!("--shard `{s}`: expected I/N with 0 ≤ I < N, e.g. 0/4"),
        }
    }
}

impl Shard {
    pub fn take(&self, jobs: Vec<Job>) -> Vec<Job> {
        jobs.into_iter()
            .enumerate()
            .filter(|(i, _)| i % self.count == self.index)
            .map(|(_, j)| j)
            .collect()
    }
}

/// What one run came to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    #[serde(flatten)]
    pub job: Job,
    pub success: bool,
    pub modes: Option<usize>,
    pub total_modes: Option<usize>,
    pub hq_pct: Option<f64>,
    pub rollbacks: usize,
    pub verdict: String,
    pub train_seconds: f64,
}

/// Success rule per dataset: with known modes, all captured and HQ ≥ `min_hq` %; otherwise the
/// run ended without the watchdog giving up and with finite losses.
pub fn judge(job: Job, s: &Summary, min_hq: f64) -> Outcome {
    let (rollbacks, verdict) = s.watch.as_ref().map_or((0, "unwatched".to_string()), |w| {
        (w.rollbacks, w.verdict.clone())
    });
    let ended = !verdict.starts_with("gave up") && !verdict.starts_with("stopped");
    let finite = s.final_loss_d.is_finite() && s.final_loss_g.is_finite();
    let m = s.final_metrics.as_ref();
    let success = match m {
        Some(m) => ended && m.modes == m.total_modes && m.hq_pct >= min_hq,
        None => ended && finite,
    };
    Outcome {
        job,
        success,
        modes: m.map(|m| m.modes),
        total_modes: m.map(|m| m.total_modes),
        hq_pct: m.map(|m| m.hq_pct),
        rollbacks,
        verdict,
        train_seconds: s.train_seconds,
    }
}

/// One cell of the table: the runs of one (recipe, data) at one grid point.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Cell {
    pub successes: usize,
    pub runs: usize,
    pub rollbacks: usize,
    /// Failed runs whose watchdog verdict says so (anything but `healthy`): what the watchdog told
    /// the user, against the failures it let pass as healthy.
    pub flagged: usize,
    /// Sums over the runs with mode metrics, for the means.
    modes: f64,
    hq: f64,
    measured: usize,
}

impl Cell {
    fn add(&mut self, o: &Outcome) {
        self.successes += o.success as usize;
        self.runs += 1;
        self.rollbacks += o.rollbacks;
        self.flagged += (!o.success && o.verdict != "healthy" && o.verdict != "unwatched") as usize;
        if let (Some(m), Some(h)) = (o.modes, o.hq_pct) {
            self.modes += m as f64;
            self.hq += h;
            self.measured += 1;
        }
    }

    fn merge(&mut self, o: &Cell) {
        self.successes += o.successes;
        self.runs += o.runs;
        self.rollbacks += o.rollbacks;
        self.flagged += o.flagged;
        self.modes += o.modes;
        self.hq += o.hq;
        self.measured += o.measured;
    }

    fn rate(&self) -> String {
        if self.runs == 0 {
            return "–".into();
        }
        let pct = 100.0 * self.successes as f64 / self.runs as f64;
        format!("{}/{} ({pct:.0} %)", self.successes, self.runs)
    }

    /// Mean modes and HQ % of the runs, when the dataset knows its modes.
    fn quality(&self) -> Option<String> {
        (self.measured > 0).then(|| {
            let n = self.measured as f64;
            format!("{:.1} · {:.1} %", self.modes / n, self.hq / n)
        })
    }
}

/// Success rates by (recipe, data) row and grid-point column.
pub struct Table {
    pub columns: Vec<String>,
    /// (row label, one cell per column).
    pub rows: Vec<(String, Vec<Cell>)>,
}

pub fn table(outcomes: &[Outcome]) -> Table {
    let mut columns: Vec<String> = Vec::new();
    let mut rows: BTreeMap<(String, String), BTreeMap<String, Cell>> = BTreeMap::new();
    for o in outcomes {
        let col = o.job.point_label();
        if !columns.contains(&col) {
            columns.push(col.clone());
        }
        rows.entry((o.job.data.clone(), o.job.recipe.clone()))
            .or_default()
            .entry(col)
            .or_default()
            .add(o);
    }
    Table {
        rows: rows
            .into_iter()
            .map(|((d, r), cells)| {
                let v = columns
                    .iter()
                    .map(|c| cells.get(c).copied().unwrap_or_default())
                    .collect();
                (format!("{r} · {d}"), v)
            })
            .collect(),
        columns,
    }
}

impl Table {
    /// The success table, then (datasets with known modes) mean modes · HQ % per cell.
    pub fn markdown(&self) -> String {
        let header = |s: &mut String, extra: &str| {
            s.push_str("| recipe · data |");
            for c in &self.columns {
                write!(s, " {c} |").unwrap();
            }
            s.push_str(extra);
            s.push_str("\n|---|");
            s.push_str(&"---|".repeat(self.columns.len() + extra.matches('|').count()));
            s.push('\n');
        };
        let mut s = String::new();
        header(&mut s, " all | rollbacks | failures flagged |");
        for (label, cells) in &self.rows {
            write!(s, "| {label} |").unwrap();
            let mut all = Cell::default();
            for c in cells {
                write!(s, " {} |", c.rate()).unwrap();
                all.merge(c);
            }
            let failures = all.runs - all.successes;
            writeln!(
                s,
                " **{}** | {} | {}/{failures} |",
                all.rate(),
                all.rollbacks,
                all.flagged
            )
            .unwrap();
        }
        if self
            .rows
            .iter()
            .any(|(_, c)| c.iter().any(|c| c.measured > 0))
        {
            s.push_str("\nMean modes captured · HQ % of the same runs:\n\n");
            header(&mut s, "");
            for (label, cells) in &self.rows {
                write!(s, "| {label} |").unwrap();
                for c in cells {
                    write!(s, " {} |", c.quality().unwrap_or_else(|| "–".into())).unwrap();
                }
                s.push('\n');
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_expands_shards_cover_it_once() {
        let axes = vec!["lr=1e-4,1e-3".parse::<Axis>().unwrap()];
        let jobs = expand(
            &["stable".into(), "vanilla".into()],
            &["grid25".into()],
            &axes,
            &"3".parse().unwrap(),
        );
        assert_eq!(jobs.len(), 12);
        assert_eq!(jobs[4].name(), "grid25-stable-lr1e-3-s1");
        let mut seen: Vec<String> = (0..5)
            .flat_map(|i| Shard { index: i, count: 5 }.take(jobs.clone()))
            .map(|j| j.name())
            .collect();
        seen.sort();
        let mut all: Vec<String> = jobs.iter().map(|j| j.name()).collect();
        all.sort();
        assert_eq!(seen, all);
        assert_eq!(
            jobs[0].sets((1e-3, 2e-3)).unwrap(),
            ["optim.lr_g=1e-4", "optim.lr_d=2e-4"]
        );
        for bad in ["3/3", "1", "a/2"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        assert!("lr=".parse::<Axis>().is_err());
    }

    #[test]
    fn seeds_are_a_count_or_a_range_that_adds_to_a_sweep() {
        let more = expand(
            &["stable".into()],
            &["ring8".into()],
            &[],
            &"3..5".parse().unwrap(),
        );
        let seeds: Vec<u64> = more.iter().map(|j| j.seed).collect();
        assert_eq!(seeds, [3, 4]);
        assert_eq!(more[0].name(), "ring8-stable-s3");
        for (arg, shown) in [("5", "5"), ("0..5", "5"), ("4..5", "4..5")] {
            assert_eq!(arg.parse::<Seeds>().unwrap().to_string(), shown);
        }
        for bad in ["0", "5..3", "4..4", "x", "1..y"] {
            let e = bad.parse::<Seeds>().unwrap_err().to_string();
            assert!(e.contains(&format!("--seeds `{bad}`")), "{e}");
        }
    }

    #[test]
    fn the_table_counts_the_failures_the_watchdog_flagged() {
        let job = expand(&["vanilla".into()], &["ring8".into()], &[], &Seeds(0..1)).remove(0);
        let run = |success: bool, verdict: &str| Outcome {
            job: job.clone(),
            success,
            modes: Some(if success { 8 } else { 6 }),
            total_modes: Some(8),
            hq_pct: Some(95.0),
            rollbacks: 0,
            verdict: verdict.into(),
            train_seconds: 1.0,
        };
        let md = table(&[
            run(true, "healthy"),
            run(true, "recovered"),
            run(false, "healthy"),
            run(false, "ended below its best: 6/8 modes, it had 7"),
            run(false, "unsettled: modes failing at the last 1 of 2 checks"),
        ])
        .markdown();
        assert!(md.contains("| **2/5 (40 %)** | 0 | 2/3 |"), "{md}");
    }
}
