use anyhow::Result;
use keel_runtime::Generator;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct InfoArgs {
    /// The generator: ONNX from `keel export`, or an int8 `.kq8` from `keel-run quantize`.
    model: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(a: InfoArgs) -> Result<()> {
    if a.model.extension().and_then(|e| e.to_str()) == Some("kq8") {
        return kq8(&a);
    }
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
        } else if k == "keel.columns" && m.columns.len() > 16 {
            println!(
                "  {k} = ({} names, {} … {}; --json shows them)",
                m.columns.len(),
                m.columns[0],
                m.columns[m.columns.len() - 1]
            );
        } else {
            println!("  {k} = {v}");
        }
    }
    Ok(())
}

/// A `.kq8`: checked with the firmware's own reader, then its header, layers and provenance.
fn kq8(a: &InfoArgs) -> Result<()> {
    use keel_firmware::kq8::Layer;
    let bytes = keel_runtime::quantize::read_kq8(&a.model)?;
    let m = keel_firmware::Model::parse(&bytes)
        .map_err(|e| anyhow::anyhow!("{}: {e}", a.model.display()))?;
    let h = &m.header;
    let layers: Vec<String> = (0..h.layer_count)
        .filter_map(|i| m.layer(i).ok())
        .map(|l| match l {
            Layer::Dense(d) => format!(
                "dense {}x{}{}",
                d.in_dim,
                d.out_dim,
                if d.relu { " + relu" } else { "" }
            ),
            Layer::Conv(c) => keel_runtime::quantize::conv_name(
                [c.in_ch, c.in_len, c.up, c.kernel, c.out_ch, c.out_len],
                c.dense.relu,
            ),
            Layer::Table { width, .. } => format!("table x{width}"),
        })
        .collect();
    let provenance: serde_json::Value =
        serde_json::from_slice(m.meta()).unwrap_or(serde_json::Value::Null);
    let v = serde_json::json!({
        "model": a.model,
        "bytes": bytes.len(),
        "version": h.version,
        "latent": h.latent,
        "classes": h.classes,
        "output": [h.channels, h.length],
        "input_quantization": {"scale": h.input_scale, "zero_point": h.input_zp},
        "output_quantization": {"scale": h.output_scale, "zero_point": h.output_zp},
        "layers": layers,
        "macs_per_sample": m.macs,
        "arena_bytes": m.arena_bytes(),
        "provenance": provenance,
    });
    if a.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!(
        "{} (.kq8 version {}, {} bytes, CRC ok)",
        a.model.display(),
        h.version,
        bytes.len()
    );
    println!(
        "  latent {}, classes {}, output {} x {}",
        h.latent, h.classes, h.channels, h.length
    );
    println!("  layers: {}", layers.join(", "));
    println!(
        "  {} MACs per sample, arena {} bytes",
        m.macs,
        m.arena_bytes()
    );
    println!("  provenance: {}", elide_long_arrays(provenance));
    Ok(())
}

/// A series model's provenance lists hundreds of column names: the human view shows a count.
fn elide_long_arrays(mut v: serde_json::Value) -> serde_json::Value {
    if let Some(map) = v.as_object_mut() {
        for value in map.values_mut() {
            if let Some(items) = value.as_array() {
                if items.len() > 16 {
                    *value = serde_json::Value::String(format!(
                        "[{} items; --json shows them]",
                        items.len()
                    ));
                }
            }
        }
    }
    v
}
