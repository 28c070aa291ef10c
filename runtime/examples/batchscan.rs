// scratch: tract throughput per batch size (not committed)
use std::time::Duration;
fn main() {
    let path = std::env::args().nth(1).unwrap();
    let g = keel_runtime::Generator::load(std::path::Path::new(&path)).unwrap();
    for round in 0..2 {
        for b in [8usize, 16, 32, 64, 128, 256, 512] {
            let t = keel_runtime::bench::time(&g, b, 1, Duration::from_millis(700)).unwrap();
            println!("round {round} batch {b}: {:.1} us/call, {:.0} samples/s", t.median_us, t.samples_per_s);
        }
    }
}
