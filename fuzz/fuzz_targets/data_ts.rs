//! Arbitrary bytes as a UEA `.ts` file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    keel_fuzz::check_dataset(keel_data::parse(Path::new("fuzz.ts"), data));
});
