use anyhow::Result;
use keel_runtime::Generator;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct InfoArgs {
    /// The generator (ONNX file written by `keel export`).
    model: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(a: InfoArgs) -> Result<()> {
    let g = Generator::load(&a.model)?;
    let macs = g.macs_per_sample()?;
    let m = &g.meta;
    if a.json {
        let ports = |ps: &[keel_runtime::model::Port]| -> Vec<serde_json::Value> {
            ps.iter()
                .map(|p| serde_json::json!({"name": p.name, "shape": p.shape}))
                .collect()
        };
        let v = serde_json::json!({
            "model": g.path,
            "inputs": ports(&g.inputs),
            "outputs": ports(std::slice::from_ref(&g.output)),
            "parameters": g.parameters,
            "macs_per_sample": macs,
            "metadata": m.all,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let shape = |s: &[Option<usize>]| -> String {
        let d: Vec<String> = s
            .iter()
            .map(|d| d.map_or("batch".to_string(), |n| n.to_string()))
            .collect();
        format!("[{}]", d.join(", "))
    };
    println!("model       {}", g.path.display());
    for p in &g.inputs {
        println!("input       {} {} float32", p.name, shape(&p.shape));
    }
    println!(
        "output      {} {} float32",
        g.output.name,
        shape(&g.output.shape)
    );
    println!("parameters  {}", g.parameters);
    println!("MACs/sample {macs}");
    println!(
        "classes     {}",
        if m.is_conditional() {
            m.classes.join(", ")
        } else {
            "(unconditional)".into()
        }
    );
    println!(
        "dataset     {} · recipe {} · seed {} · step {}",
        m.dataset, m.recipe, m.seed, m.step
    );
    println!("metadata:");
    for (k, v) in &m.all {
        if k == "keel.config" {
            println!(
                "  {k} = ({} lines of TOML; --json shows it)",
                v.lines().count()
            );
        } else {
            println!("  {k} = {v}");
        }
    }
    Ok(())
}
