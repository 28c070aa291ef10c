//! What the fuzz targets share: using a parsed model or dataset the way Keel does, so a reader
//! that accepts a lie fails here (a panic is a crash libFuzzer reports).

// One definition of "use a parsed model" for the fuzzers and the firmware's hostile-input tests.
#[path = "../../firmware/tests/common/exercise.rs"]
mod exercise;
pub use exercise::exercise_kq8;

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
