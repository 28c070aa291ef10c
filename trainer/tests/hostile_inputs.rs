//! The data and config readers against hostile input: arbitrary bytes, and valid files truncated,
//! bit-flipped, spliced with junk or given absurd sizes. Each gives a dataset/config or an error
//! value — never a panic (proptest turns one into a failure) — and an error names the file.

use keel_trainer::config::{recipe, ConfigBuilder};
use keel_trainer::data;
use proptest::prelude::*;
use proptest::test_runner::Config;
use std::path::Path;

const PLAIN_CSV: &str = "x,y\n0.5,1.0\n-1.5,2.25\n3,4\n# comment\n5e-1,-7\n";
const SERIES_CSV: &str = "split,label,c0_t0,c0_t1,c0_t2,c1_t0,c1_t1,c1_t2\n\
train,walk,1,2,3,4,5,6\ntrain,run,0.1,0.2,0.3,0.4,0.5,0.6\ntest,walk,1,1,1,2,2,2\ntest,run,0,0,1,1,2,2\n";
const TS: &str = "# toy\n@problemName toy\n@timeStamps false\n@univariate false\n@dimensions 2\n\
@equalLength true\n@seriesLength 3\n@classLabel true walk run\n@data\n\
1,2,3:4,5,6:walk\n0.1,0.2,0.3:0.4,0.5,0.6:run\n";

fn config() -> Config {
    Config {
        cases: 256,
        failure_persistence: None,
        ..Config::default()
    }
}

/// One edit of a valid file.
#[derive(Debug, Clone)]
enum Edit {
    Truncate(usize),
    FlipBit(usize),
    SetByte(usize, u8),
    Insert(usize, Vec<u8>),
    /// A huge or odd number where a field was.
    Absurd(usize, &'static str),
}

fn edit() -> impl Strategy<Value = Edit> {
    let absurd = prop_oneof![
        Just("99999999999999999999"),
        Just("1e309"),
        Just("-inf"),
        Just("NaN"),
        Just("18446744073709551616"),
        Just(""),
        Just(",,,,,,,,"),
        Just(":::"),
        Just("\u{0}"),
        Just("@dimensions 4294967295"),
        Just("@seriesLength 99999999999"),
    ];
    prop_oneof![
        any::<usize>().prop_map(Edit::Truncate),
        any::<usize>().prop_map(Edit::FlipBit),
        (any::<usize>(), any::<u8>()).prop_map(|(a, b)| Edit::SetByte(a, b)),
        (
            any::<usize>(),
            proptest::collection::vec(any::<u8>(), 1..64)
        )
            .prop_map(|(a, v)| Edit::Insert(a, v)),
        (any::<usize>(), absurd).prop_map(|(a, s)| Edit::Absurd(a, s)),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> Vec<u8> {
    let mut b = text.as_bytes().to_vec();
    for e in edits {
        let n = b.len().max(1);
        match e {
            Edit::Truncate(at) => b.truncate(at % n),
            Edit::FlipBit(at) => {
                if !b.is_empty() {
                    let i = (at / 8) % b.len();
                    b[i] ^= 1 << (at % 8);
                }
            }
            Edit::SetByte(at, v) => {
                if !b.is_empty() {
                    let i = at % b.len();
                    b[i] = *v;
                }
            }
            Edit::Insert(at, v) => {
                let i = at % (b.len() + 1);
                b.splice(i..i, v.iter().copied());
            }
            Edit::Absurd(at, s) => {
                let i = at % (b.len() + 1);
                b.splice(i..i, s.bytes());
            }
        }
    }
    b
}

/// Loads `bytes` as `--data` file `name`; an error must name the file.
fn load(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), TestCaseError> {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    match data::load(p.to_str().unwrap(), 0) {
        Ok(d) => {
            prop_assert_eq!(d.points.len(), d.len() * d.dim);
            prop_assert!(d.labels.is_empty() || d.labels.len() == d.len());
            prop_assert!(d.labels.iter().all(|&l| l < d.classes.len()));
        }
        Err(e) => {
            let msg = format!("{e:#}");
            prop_assert!(msg.contains(name), "error without the file name: {}", msg);
        }
    }
    Ok(())
}

#[test]
fn the_valid_files_load() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, text) in [
        ("plain.csv", PLAIN_CSV),
        ("series.csv", SERIES_CSV),
        ("toy_TRAIN.ts", TS),
    ] {
        let p = tmp.path().join(name);
        std::fs::write(&p, text).unwrap();
        let d = data::load(p.to_str().unwrap(), 0).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        assert!(d.len() >= 2, "{name}");
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_as_data(
        bytes in proptest::collection::vec(any::<u8>(), 0..1024),
        ext in prop_oneof![Just("csv"), Just("ts")],
    ) {
        let tmp = tempfile::tempdir().unwrap();
        load(tmp.path(), &format!("junk.{ext}"), &bytes)?;
    }

    #[test]
    fn edited_plain_csv(edits in proptest::collection::vec(edit(), 1..4)) {
        let tmp = tempfile::tempdir().unwrap();
        load(tmp.path(), "plain.csv", &apply(PLAIN_CSV, &edits))?;
    }

    #[test]
    fn edited_series_csv(edits in proptest::collection::vec(edit(), 1..4)) {
        let tmp = tempfile::tempdir().unwrap();
        load(tmp.path(), "series.csv", &apply(SERIES_CSV, &edits))?;
    }

    #[test]
    fn edited_ts(edits in proptest::collection::vec(edit(), 1..4)) {
        let tmp = tempfile::tempdir().unwrap();
        load(tmp.path(), "toy_TRAIN.ts", &apply(TS, &edits))?;
    }

    /// A recipe's TOML, edited, as `--config`: a config that loads also passes validation.
    #[test]
    fn edited_config_file(edits in proptest::collection::vec(edit(), 1..4)) {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("mine.toml");
        std::fs::write(&p, apply(recipe("stable").unwrap().toml, &edits)).unwrap();
        match ConfigBuilder::new().file(&p).and_then(|b| b.build()) {
            Ok(c) => prop_assert!(c.validate().is_ok()),
            Err(e) => {
                let msg = format!("{e:#}");
                prop_assert!(msg.contains("mine.toml") || msg.contains('`'), "{}", msg);
            }
        }
    }

    /// `--set KEY=VALUE` with arbitrary keys and values, absurd sizes among them.
    #[test]
    fn arbitrary_assignments(
        key in prop_oneof![
            Just("model.g_width".to_string()),
            Just("train.batch".to_string()),
            Just("model.latent".to_string()),
            Just("optim.lr_g".to_string()),
            Just("watch.samples".to_string()),
            "[a-z_.]{0,24}",
        ],
        value in prop_oneof![
            Just("18446744073709551615".to_string()),
            Just("1e308".to_string()),
            Just("-1".to_string()),
            Just("nan".to_string()),
            Just("[1,2]".to_string()),
            ".{0,16}",
        ],
    ) {
        let built = ConfigBuilder::new()
            .set(&format!("{key}={value}"))
            .and_then(|b| b.build());
        if let Ok(c) = built {
            prop_assert!(c.validate().is_ok());
            prop_assert!(c.model.g_width <= 8192 && c.train.batch <= 65_536);
        }
    }
}
