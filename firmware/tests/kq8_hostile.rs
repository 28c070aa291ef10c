//! The `.kq8` reader against hostile bytes: arbitrary input, truncations, bit flips, and header or
//! layer-table fields set to lying values with the CRC recomputed (so the checks behind the CRC are
//! what answers). Every input gives an error value or a model that runs; nothing panics, nothing
//! reads out of bounds. Runs under Miri too (`cargo +nightly miri test -p keel-firmware --test
//! kq8_hostile`), with fewer cases.

#[path = "common/exercise.rs"]
mod exercise;

use exercise::exercise_kq8 as exercise;
use keel_firmware::kq8::{self, HEADER_SIZE, LAYER_ENTRY_SIZE};
use proptest::prelude::*;
use proptest::test_runner::Config;

/// A real quantized generator (grid25, 38 KB), as `keel-run quantize` writes it.
const VALID: &[u8] = include_bytes!("../../tests/fixtures/grid25/generator.kq8");
/// A conditional conv generator (format version 2: projection, upsampling convolutions, crop).
const CONV: &[u8] = include_bytes!("../../tests/fixtures/basicmotions-conv/generator.kq8");

fn fixture(conv: bool) -> &'static [u8] {
    if conv {
        CONV
    } else {
        VALID
    }
}

fn config() -> Config {
    Config {
        cases: if cfg!(miri) { 4 } else { 512 },
        failure_persistence: None,
        ..Config::default()
    }
}

/// Recomputes the trailing CRC, as a careful forger would.
fn reseal(b: &mut [u8]) {
    let body = b.len() - 4;
    let crc = kq8::CRC32.checksum(&b[..body]);
    b[body..].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn the_fixtures_are_accepted() {
    assert!(exercise(VALID) && exercise(CONV));
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_are_refused(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        prop_assert!(!exercise(&bytes));
    }

    #[test]
    fn arbitrary_bytes_behind_a_valid_magic_are_refused(
        tail in proptest::collection::vec(any::<u8>(), 0..2048)
    ) {
        let mut bytes = VALID[..8].to_vec();
        bytes.extend(tail);
        prop_assert!(!exercise(&bytes));
    }

    #[test]
    fn every_truncation_is_refused(len in 0..VALID.len()) {
        prop_assert!(!exercise(&VALID[..len]));
    }

    #[test]
    fn a_flipped_bit_is_refused(bit in 0..CONV.len() * 8, conv in any::<bool>()) {
        let mut bytes = fixture(conv).to_vec();
        let bit = bit % (bytes.len() * 8);
        bytes[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(!exercise(&bytes));
    }

    /// Lengths, offsets and counts that lie (up to u32::MAX), CRC intact: parse refuses or the
    /// model runs within its bounds.
    #[test]
    fn lying_fields_never_panic(
        at in 0..HEADER_SIZE + 6 * LAYER_ENTRY_SIZE,
        value in prop_oneof![any::<u32>(), Just(u32::MAX), Just(0), 0u32..70_000],
        width in prop_oneof![Just(1usize), Just(2), Just(4)],
        conv in any::<bool>(),
    ) {
        let mut bytes = fixture(conv).to_vec();
        let at = at - at % width;
        bytes[at..at + width].copy_from_slice(&value.to_le_bytes()[..width]);
        reseal(&mut bytes);
        exercise(&bytes);
    }

    /// A sealed file whose size field claims more or less than it has.
    #[test]
    fn lying_sizes_are_refused(extra in 1u32..u32::MAX / 2, shrink in any::<bool>()) {
        let mut bytes = VALID.to_vec();
        let size = VALID.len() as u32;
        let lie = if shrink { size.saturating_sub(extra).max(1) } else { size.saturating_add(extra) };
        // file_size sits right after the magic and version (see kq8::Header).
        let at = VALID.windows(4).position(|w| w == size.to_le_bytes()).unwrap();
        prop_assume!(at < HEADER_SIZE);
        bytes[at..at + 4].copy_from_slice(&lie.to_le_bytes());
        reseal(&mut bytes);
        prop_assert!(!exercise(&bytes));
    }
}
