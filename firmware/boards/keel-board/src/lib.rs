//! What every Keel board shares. A board crate brings up its clock, UART and logger, then calls
//! [`run`]: parse the embedded model, stream the configured samples, benchmark the kernels and
//! report through defmt. The return value is the process exit code.
#![no_std]

mod adapt;
mod counter;
mod delay;
mod stack;

pub use counter::Counter;
pub use delay::CycleDelay;

use keel_firmware::app::{self, Plan};
use keel_firmware::kq8::Layer;
use keel_firmware::{Arena, Kernel, Model};

/// Word alignment for the embedded model.
#[repr(C, align(4))]
pub struct Aligned<T: ?Sized>(pub T);

include!(concat!(env!("OUT_DIR"), "/model.rs"));

/// Exit codes the host's runner and tests read.
pub mod exit {
    pub const OK: i32 = 0;
    pub const MODEL_REFUSED: i32 = 2;
    pub const STREAM_FAILED: i32 = 3;
    pub const KERNELS_DISAGREE: i32 = 4;
    pub const ADAPT_FAILED: i32 = 5;
    pub const PANIC: i32 = 101;
}

/// The activation arena, sized at build time from the model (statics, not stack).
pub struct Statics {
    pub a: [i8; ARENA_WIDTH],
    pub b: [i8; ARENA_WIDTH],
    pub x16: [u32; ARENA_WORDS],
}

impl Statics {
    pub const fn new() -> Self {
        Statics {
            a: [0; ARENA_WIDTH],
            b: [0; ARENA_WIDTH],
            x16: [0; ARENA_WORDS],
        }
    }
}

impl Default for Statics {
    fn default() -> Self {
        Self::new()
    }
}

/// A board's whole `main` after it has set up its UART: paint the stack, start the counter,
/// [`run`], and leave with the exit code.
pub fn main<W: embedded_io::Write>(cpu_hz: u32, mut uart: W) -> ! {
    stack::paint();
    let code = match (
        cortex_m::Peripherals::take(),
        cortex_m::singleton!(: Statics = Statics::new()),
    ) {
        (Some(p), Some(statics)) => {
            let counter = Counter::start(p.SYST);
            run(statics, &mut uart, &mut CycleDelay::new(cpu_hz), &counter)
        }
        _ => exit::PANIC,
    };
    semihosting::process::exit(code)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    match info.location() {
        Some(l) => defmt::error!("panic at {=str}:{=u32}", l.file(), l.line()),
        None => defmt::error!("panic"),
    }
    semihosting::process::exit(exit::PANIC)
}

/// Streams the samples to `out`, then measures the kernels (the stack was painted before).
pub fn run<W: embedded_io::Write, D: embedded_hal::delay::DelayNs>(
    statics: &'static mut Statics,
    out: &mut W,
    delay: &mut D,
    counter: &Counter,
) -> i32 {
    let model = match Model::parse(&MODEL.0) {
        Ok(m) => m,
        Err(e) => {
            defmt::error!("model refused: {}", e);
            return exit::MODEL_REFUSED;
        }
    };
    let h = &model.header;
    defmt::info!(
        "model: {} bytes, latent {}, classes {}, {}x{} outputs, {} layers, {} MACs/sample, arena {} bytes",
        MODEL.0.len(),
        h.latent,
        h.classes,
        h.channels,
        h.length,
        h.layer_count,
        model.macs,
        model.arena_bytes()
    );
    let mut arena = Arena {
        a: &mut statics.a,
        b: &mut statics.b,
        x16: &mut statics.x16,
    };
    let plan = Plan {
        seed: SEED,
        per_class: PER_CLASS,
        interval_us: INTERVAL_US,
    };
    // (Timed by `bench` below, in windows short enough for the 24-bit counter.)
    match app::run(&model, &plan, &mut arena, Kernel::best(), out, delay) {
        Ok(s) => defmt::info!(
            "streamed {} samples ({} bytes) with seed {}",
            s.samples,
            s.bytes,
            SEED
        ),
        Err(e) => {
            defmt::error!("stream failed: {}", e);
            return exit::STREAM_FAILED;
        }
    }
    if let Err(code) = bench(&model, &mut arena, counter) {
        return code;
    }
    if !ADAPT.0.is_empty() {
        if let Err(code) = adapt::run(&model, &mut arena, counter, &ADAPT.0) {
            return code;
        }
    }
    defmt::info!("stack high-water: {} bytes", stack::high_water());
    exit::OK
}

/// Ticks per sample and per dense layer for each kernel; both must give the same samples.
fn bench(model: &Model, arena: &mut Arena, counter: &Counter) -> Result<(), i32> {
    let per_tick = counter.calibrate();
    defmt::info!("counter: {} instructions per tick (calibrated)", per_tick);
    let mut check = [0u32; 2];
    for (k, kernel) in [Kernel::Dsp, Kernel::Scalar].into_iter().enumerate() {
        let mut layer_ticks = [0u32; keel_firmware::kq8::MAX_LAYERS];
        let mut total = 0u32;
        let mut crc = keel_firmware::kq8::CRC32.digest();
        for i in 0..BENCH_SAMPLES {
            let mut last = counter.now();
            let t0 = last;
            let out = model
                .generate_observed(0, SEED, i, arena, kernel, &mut |stage, _| {
                    let now = counter.now();
                    if stage > 0 {
                        layer_ticks[stage - 1] += Counter::diff(last, now);
                    }
                    last = now;
                })
                .map_err(|e| {
                    defmt::error!("bench failed: {}", e);
                    exit::STREAM_FAILED
                })?;
            total += counter.since(t0);
            crc.update(bytes_of(out));
        }
        check[k] = crc.finalize();
        let n = BENCH_SAMPLES.max(1);
        defmt::info!(
            "bench {}: {} ticks/sample = {} instructions/sample, {} instructions/MAC",
            kernel,
            total / n,
            (total as u64 * per_tick as u64) / n as u64,
            (total as f32 * per_tick as f32) / (n as f32 * model.macs as f32)
        );
        for i in 0..model.header.layer_count {
            let t = layer_ticks[i as usize] as f32 * per_tick as f32 / n as f32;
            match model.layer(i) {
                Ok(Layer::Dense(d)) => defmt::info!(
                    "bench {} layer {} dense {}x{}: {} instructions, {} instructions/MAC",
                    kernel,
                    i,
                    d.in_dim,
                    d.out_dim,
                    t as u32,
                    t / d.macs() as f32
                ),
                // Per MAC of the layer itself (in_ch · k · out_ch per step), not of its padding.
                Ok(Layer::Conv(c)) => defmt::info!(
                    "bench {} layer {} conv {}x{} up{} k{} -> {}x{}: {} instructions, {} instructions/MAC",
                    kernel,
                    i,
                    c.in_ch,
                    c.in_len,
                    c.up,
                    c.kernel,
                    c.out_ch,
                    c.out_len,
                    t as u32,
                    t / (c.out_len * c.out_ch * c.in_ch * c.kernel) as f32
                ),
                _ => {}
            }
        }
    }
    if check[0] != check[1] {
        defmt::error!(
            "DSP and scalar kernels disagree: {:x} vs {:x}",
            check[0],
            check[1]
        );
        return Err(exit::KERNELS_DISAGREE);
    }
    defmt::info!("DSP and scalar kernels agree on {} samples", BENCH_SAMPLES);
    Ok(())
}

fn bytes_of(v: &[i8]) -> &[u8] {
    // SAFETY: i8 and u8 have the same size and alignment, and every bit pattern is valid for both.
    unsafe { core::slice::from_raw_parts(v.as_ptr().cast(), v.len()) }
}
