//! What the fuzz targets share: using a parsed model or dataset the way Keel does, so a reader
//! that accepts a lie fails here (a panic is a crash libFuzzer reports).

use keel_firmware::{Arena, Kernel, Model};

/// Parses a `.kq8` and, when accepted, reads every layer and table and runs one sample per class.
pub fn exercise_kq8(bytes: &[u8]) {
    let Ok(m) = Model::parse(bytes) else {
        return;
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
}

/// A dataset a reader accepted must be consistent: rows × dim values, one label per row, labels
/// that name classes, finite values, a shape that matches.
pub fn check_dataset(d: anyhow::Result<keel_data::Dataset>) {
    let Ok(d) = d else {
        return;
    };
    assert!(d.dim > 0 && d.points.len() == d.len() * d.dim);
    assert!(d.labels.is_empty() || d.labels.len() == d.len());
    assert!(d.labels.iter().all(|&l| l < d.classes.len()));
    assert!(d.points.iter().all(|v| v.is_finite()));
    if let Some([c, t]) = d.shape {
        assert_eq!(c * t, d.dim);
    }
}
