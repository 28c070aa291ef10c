//! Arbitrary bytes as a `.kq8`: parsed, and when accepted, every layer read and a sample run.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    keel_fuzz::exercise_kq8(data);
});
