//! Arbitrary bytes as a `--data` CSV (a plain table or labelled series, told apart by the header).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    keel_fuzz::check_dataset(keel_data::parse(Path::new("fuzz.csv"), data));
});
