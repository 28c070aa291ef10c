//! The `keel.*` metadata of an exported generator: the contract lives in `keel-contract` (the
//! trainer writes it with the same code); this module names it for the runtime.

pub use keel_contract::onnx::{
    Denorm, Metadata, Modes, FORMAT_VERSION, INPUT_CLASS, INPUT_Z, OUTPUT,
};
#[cfg(test)]
use std::collections::BTreeMap;

/// Metadata of a conditional 2-class, `[2, 3]`-series generator for unit tests, with fields replaced.
#[cfg(test)]
pub(crate) fn test_props(extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut p: BTreeMap<String, String> = [
        ("keel.format_version", "1"),
        ("keel.latent", "4"),
        ("keel.classes", r#"["walk","run"]"#),
        ("keel.output_shape", "[2, 3]"),
        (
            "keel.denorm",
            r#"{"kind":"min_max","min":[0,10],"max":[2,30]}"#,
        ),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in extra {
        p.insert(k.to_string(), v.to_string());
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_metadata_parses_and_denormalises_per_channel() {
        let m = Metadata::from_props(test_props(&[])).unwrap();
        assert_eq!(m.sample_len(), 6);
        assert_eq!(m.class_index("run").unwrap(), 1);
        assert_eq!(m.column_names()[..4], ["c0_t0", "c0_t1", "c0_t2", "c1_t0"]);
        // min_max maps [-1, 1] onto [min, max] per channel; channel c covers T = 3 values.
        let mut v = vec![-1.0, 0.0, 1.0, -1.0, 0.0, 1.0];
        m.denorm.apply(&mut v, 3);
        assert_eq!(v, [0.0, 1.0, 2.0, 10.0, 20.0, 30.0]);
        let s = Denorm::MeanStd {
            mean: vec![1.0, -1.0],
            std: vec![2.0, 0.5],
        };
        let mut v = vec![1.0, 1.0, 2.0, 2.0];
        s.apply(&mut v, 1);
        assert_eq!(v, [3.0, -0.5, 5.0, 0.0]);
    }

    #[test]
    fn inconsistent_metadata_names_the_field() {
        let cases = [
            (("keel.latent", "x"), "`keel.latent`"),
            (("keel.output_shape", "[0]"), "`keel.output_shape`"),
            (("keel.classes", r#"["a","a"]"#), "lists `a` twice"),
            (("keel.columns", r#"["only one"]"#), "`keel.columns`"),
            (("keel.denorm", r#"{"kind":"log"}"#), "`keel.denorm`"),
            (
                ("keel.denorm", r#"{"kind":"mean_std","mean":[0],"std":[1]}"#),
                "1/1 entries for 2 channels",
            ),
            (("keel.format_version", "2"), "upgrade keel-run"),
        ];
        for ((k, v), needle) in cases {
            let e = Metadata::from_props(test_props(&[(k, v)])).unwrap_err();
            let e = format!("{e:#}");
            assert!(e.contains(needle), "{k}={v}: {e}");
        }
    }
}
