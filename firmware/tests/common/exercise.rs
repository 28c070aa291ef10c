//! Using a parsed `.kq8` the way the firmware does, shared by the hostile-input tests and the fuzz
//! targets (`fuzz/src/lib.rs` includes this file): a reader that accepts a lie fails here.

use keel_firmware::{Arena, Kernel, Model};

/// Parses `bytes` and, when accepted, reads every layer and table and runs one sample per class
/// (up to 3); true when the model was accepted.
pub fn exercise_kq8(bytes: &[u8]) -> bool {
    let Ok(m) = Model::parse(bytes) else {
        return false;
    };
    for i in 0..m.header.layer_count {
        let _ = m.layer(i);
    }
    let _ = (
        m.cdf(0),
        m.cdf(keel_firmware::kq8::CDF_ENTRIES - 1),
        m.meta(),
    );
    for c in 0..usize::from(m.header.channels) {
        let _ = (m.denorm(c), m.to_real(c, -128));
    }
    let (mut a, mut b, mut x) = (
        vec![0i8; m.max_width],
        vec![0i8; m.max_width],
        vec![0u32; m.max_in / 2],
    );
    let mut arena = Arena {
        a: &mut a,
        b: &mut b,
        x16: &mut x,
    };
    for class in 0..m.header.classes.clamp(1, 3) {
        let _ = m.generate(class, 1, 2, &mut arena, Kernel::Scalar);
    }
    true
}
