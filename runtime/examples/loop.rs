#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use tract_onnx::prelude::*;
fn main() {
    let p = std::env::args().nth(1).unwrap();
    let b: usize = std::env::args().nth(2).unwrap().parse().unwrap();
    let iters: usize = std::env::args().nth(3).unwrap().parse().unwrap();
    let g = keel_runtime::Generator::load(std::path::Path::new(&p)).unwrap();
    let plan = g.plan(b).unwrap();
    let mut st = plan.spawn().unwrap();
    let z: TValue = Tensor::from_shape(&[b, g.meta.latent], &vec![0.5f32; b * g.meta.latent])
        .unwrap()
        .into();
    let t = std::time::Instant::now();
    for _ in 0..iters {
        st.run(tvec![z.clone()]).unwrap();
    }
    println!(
        "{:.2} us/call",
        t.elapsed().as_secs_f64() * 1e6 / iters as f64
    );
}
