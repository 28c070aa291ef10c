//! Arbitrary bytes with a correct CRC appended: what gets past the checksum, so the fuzzer explores
//! the header, section and layer checks behind it (lying sizes and offsets).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let mut bytes = data.to_vec();
    let body = bytes.len() - 4;
    let crc = keel_firmware::kq8::CRC32.checksum(&bytes[..body]);
    bytes[body..].copy_from_slice(&crc.to_le_bytes());
    keel_fuzz::exercise_kq8(&bytes);
});
