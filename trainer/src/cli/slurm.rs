//! `keel sweep --slurm N`: the sweep as a Slurm job array of N shards and a merge job that runs
//! when every shard has succeeded, submitted with `sbatch`. The scripts are written into the
//! sweep's directory first, so what ran can be read (and resubmitted by hand).

use anyhow::{bail, Context, Result};
use keel_trainer::rundir::write_atomic;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What to submit.
pub struct Submission {
    /// `keel` itself (absolute), the sweep's arguments without `--shard`, and its directory.
    pub exe: PathBuf,
    pub args: Vec<String>,
    pub out: PathBuf,
    pub tasks: usize,
    /// CPUs per task (the sweep's `--jobs`).
    pub cpus: usize,
    /// Extra `sbatch` options for both jobs (`--partition=…`, `--time=…`).
    pub options: Vec<String>,
    /// Block until the merge job has finished (`sbatch --wait`).
    pub wait: bool,
}

/// Writes `sweep.sbatch` and `merge.sbatch` into the sweep's directory and submits them.
pub fn submit(s: &Submission) -> Result<()> {
    if s.tasks == 0 {
        bail!("--slurm 0: the array needs at least one task");
    }
    let sbatch = which("sbatch").context(
        "--slurm submits with `sbatch`, which is not on PATH: install Slurm's client tools \
         (Debian: slurm-client) on a machine of the cluster, or run the shards yourself with \
         --shard I/N and join them with `keel sweep merge`",
    )?;
    std::fs::create_dir_all(&s.out)
        .with_context(|| format!("cannot create {}", s.out.display()))?;
    let out = s
        .out
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", s.out.display()))?;
    let cwd = std::env::current_dir()?;
    let keel = quote(&s.exe.display().to_string());
    let mut shard = vec![keel.clone()];
    shard.extend(s.args.iter().map(|a| quote(a)));
    let array = out.join("sweep.sbatch");
    let header = |name: &str, log: &str| {
        format!(
            "#!/bin/sh\n#SBATCH --job-name={name}\n#SBATCH --chdir={}\n#SBATCH --output={}\n",
            cwd.display(),
            out.join(log).display()
        )
    };
    let script = format!(
        "{}#SBATCH --array=0-{}\n#SBATCH --cpus-per-task={}\n\
         exec {} --shard \"$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT\"\n",
        header("keel-sweep", "slurm-%A_%a.out"),
        s.tasks - 1,
        s.cpus,
        shard.join(" ")
    );
    write_atomic(&array, script.as_bytes())?;
    let merge = out.join("merge.sbatch");
    let script = format!(
        "{}exec {keel} sweep merge {}\n",
        header("keel-sweep-merge", "slurm-merge-%j.out"),
        quote(&out.display().to_string())
    );
    write_atomic(&merge, script.as_bytes())?;

    let id = sbatch_run(&sbatch, &s.options, &array, &[])?;
    println!(
        "submitted the sweep as Slurm job array {id} ({} tasks; logs {}/slurm-{id}_*.out)",
        s.tasks,
        out.display()
    );
    let mut extra = vec![
        format!("--dependency=afterok:{id}"),
        "--kill-on-invalid-dep=yes".to_string(),
    ];
    if s.wait {
        extra.push("--wait".to_string());
    }
    let merge_id = sbatch_run(&sbatch, &s.options, &merge, &extra)?;
    if s.wait {
        println!(
            "merged by job {merge_id}: {}",
            out.join("sweep.md").display()
        );
    } else {
        println!(
            "the merge job {merge_id} writes {} once every task has succeeded (squeue -j {id},{merge_id})",
            out.join("sweep.md").display()
        );
    }
    Ok(())
}

/// `sbatch --parsable OPTIONS EXTRA SCRIPT`; its job id.
fn sbatch_run(
    sbatch: &Path,
    options: &[String],
    script: &Path,
    extra: &[String],
) -> Result<String> {
    let o = Command::new(sbatch)
        .arg("--parsable")
        .args(options)
        .args(extra)
        .arg(script)
        .output()
        .with_context(|| format!("cannot run {}", sbatch.display()))?;
    let stdout = String::from_utf8_lossy(&o.stdout);
    let id = stdout.trim().split(';').next().unwrap_or("").to_string();
    if !o.status.success() || id.is_empty() {
        bail!(
            "sbatch refused {} ({}): {}",
            script.display(),
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        );
    }
    Ok(id)
}

/// The first `name` on PATH.
fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// `s` as one word for `sh`.
fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=,:+@%".contains(c))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}
