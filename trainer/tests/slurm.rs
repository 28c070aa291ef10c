//! `keel sweep --slurm` on a real Slurm: a single-node cluster (munged, slurmctld, slurmd from
//! Debian's `slurm-wlm` and `munge`) started by the test on localhost, with its config, key and
//! state in a temporary directory; every daemon is stopped when the test ends, whatever happens.

use crate::common::{keel, stderr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The daemons of a one-node cluster; dropping it stops them.
struct Cluster {
    dir: tempfile::TempDir,
    daemons: Vec<Child>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // slurmd first (it runs the jobs), then the controller, then munge.
        for d in self.daemons.iter_mut().rev() {
            let _ = Command::new("kill").arg(d.id().to_string()).status();
        }
        for d in &mut self.daemons {
            let deadline = Instant::now() + Duration::from_secs(10);
            while matches!(d.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = d.kill();
            let _ = d.wait();
        }
    }
}

impl Cluster {
    fn conf(&self) -> PathBuf {
        self.dir.path().join("slurm.conf")
    }

    /// A command with this cluster's config.
    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", self.conf());
        c
    }

    fn start() -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let p = &dir.path().to_path_buf();
        for d in ["munge", "state", "spool", "log"] {
            std::fs::create_dir_all(p.join(d)).unwrap();
        }
        set_mode(&p.join("munge"), 0o700);
        let key: Vec<u8> = (0..1024u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        std::fs::write(p.join("munge/munge.key"), key).unwrap();
        set_mode(&p.join("munge/munge.key"), 0o400);
        let host = String::from_utf8(Command::new("hostname").arg("-s").output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_string();
        let (ctld_port, d_port) = (free_port(), free_port());
        let socket = p.join("munge/munge.sock");
        let d = |s: &str| p.join(s).display().to_string();
        let conf = format!(
            "ClusterName=keeltest\nSlurmctldHost={host}(127.0.0.1)\nSlurmctldPort={ctld_port}\n\
             SlurmdPort={d_port}\nAuthType=auth/munge\nCredType=cred/munge\nAuthInfo=socket={}\n\
             SlurmUser=root\nSlurmdUser=root\nStateSaveLocation={}\nSlurmdSpoolDir={}\n\
             SlurmctldPidFile={}\nSlurmdPidFile={}\nSlurmctldLogFile={}\nSlurmdLogFile={}\n\
             ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\nSelectType=select/cons_tres\n\
             SelectTypeParameters=CR_CPU\nJobAcctGatherType=jobacct_gather/none\n\
             AccountingStorageType=accounting_storage/none\nMpiDefault=none\nReturnToService=2\n\
             NodeName={host} NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN\n\
             PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP\n",
            socket.display(),
            d("state"),
            d("spool"),
            d("slurmctld.pid"),
            d("slurmd.pid"),
            d("log/slurmctld.log"),
            d("log/slurmd.log"),
        );
        std::fs::write(p.join("slurm.conf"), conf).unwrap();
        let mut c = Cluster {
            dir,
            daemons: Vec::new(),
        };
        let munged = Command::new("munged")
            .args(["--foreground", "--force"])
            .arg(format!("--socket={}", socket.display()))
            .arg(format!("--key-file={}", d("munge/munge.key")))
            .arg(format!("--log-file={}", d("log/munged.log")))
            .arg(format!("--pid-file={}", d("munge/munged.pid")))
            .arg(format!("--seed-file={}", d("munge/seed")))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("munged runs");
        c.daemons.push(munged);
        wait_for(|| socket.exists(), "munged's socket");
        for (daemon, flags) in [("slurmctld", vec!["-D"]), ("slurmd", vec!["-D"])] {
            let child = c
                .command(daemon)
                .args(&flags)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("{daemon} runs: {e}"));
            c.daemons.push(child);
        }
        wait_for(
            || {
                let o = c.command("sinfo").args(["-h", "-o", "%t"]).output();
                o.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "idle")
            },
            "the node to be idle (sinfo)",
        );
        c
    }
}

fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for(mut ready: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A tiny sweep's arguments into `out`.
fn sweep_args(out: &Path) -> Vec<String> {
    [
        "sweep",
        "--recipes",
        "vanilla",
        "--data",
        "ring8",
        "--grid",
        "lr=1e-4,1e-3",
        "--seeds",
        "2",
        "--jobs",
        "1",
        "--set",
        "train.steps=200",
        "--set",
        "train.eval_every=100",
        "--set",
        "train.eval_samples=200",
        "--out",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([out.display().to_string()])
    .collect()
}

/// `sweep.jsonl`'s runs without their timings (which differ from one run to the next), by name.
fn results(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("sweep.jsonl")).unwrap();
    let mut v: Vec<String> = text
        .lines()
        .map(|l| {
            let mut r: serde_json::Value = serde_json::from_str(l).unwrap();
            r.as_object_mut().unwrap().remove("train_seconds");
            r.to_string()
        })
        .collect();
    v.sort();
    v
}

/// The sweep table without its last line (run count, result files and seconds of training).
fn table(dir: &Path) -> String {
    let md = std::fs::read_to_string(dir.join("sweep.md")).unwrap();
    md.lines()
        .filter(|l| !l.contains("result file"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn keel_in(c: &Cluster, args: &[String]) -> Output {
    c.command(env!("CARGO_BIN_EXE_keel"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
#[ignore = "needs Slurm (slurm-wlm, munge) and root: run .ci/test"]
fn a_sweep_on_slurm_merges_every_run_once_and_equals_the_local_sweep() {
    let c = Cluster::start();
    let tmp = tempfile::tempdir().unwrap();
    let on_slurm = tmp.path().join("slurm");
    let mut args = sweep_args(&on_slurm);
    args.extend(["--slurm", "2", "--wait"].map(String::from));
    let o = keel_in(&c, &args);
    assert!(
        o.status.success(),
        "{}\n{}",
        stderr(&o),
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("merged by job"));
    for shard in ["results-0of2.jsonl", "results-1of2.jsonl"] {
        assert!(on_slurm.join(shard).exists(), "{shard} missing");
    }
    let slurm = results(&on_slurm);
    assert_eq!(slurm.len(), 4, "every run once: {slurm:?}");
    let mut names: Vec<String> = slurm
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            format!("{}-{}", v["point"], v["seed"])
        })
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 4, "{slurm:?}");

    let local = tmp.path().join("local");
    let o = keel(
        &sweep_args(&local)
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(results(&on_slurm), results(&local));
    assert_eq!(table(&on_slurm), table(&local));

    // A job Slurm refuses is an error that says which script and why.
    let mut args = sweep_args(&tmp.path().join("refused"));
    args.extend(["--slurm", "2", "--slurm-option=--partition=nosuch"].map(String::from));
    let o = keel_in(&c, &args);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("sbatch refused") && e.contains("sweep.sbatch"),
        "{e}"
    );
}

#[test]
fn a_sweep_for_slurm_without_sbatch_says_what_is_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_keel"))
        .args(sweep_args(&tmp.path().join("s")))
        .args(["--slurm", "2"])
        .env("PATH", tmp.path())
        .output()
        .unwrap();
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("sbatch") && e.contains("not on PATH"), "{e}");
    assert!(
        !tmp.path().join("s/sweep.sbatch").exists(),
        "nothing written"
    );
}
