//! `keel`: train GANs that do not fall over.

use clap::Parser;

mod cli;

// glibc malloc maps and unmaps every activation buffer over 128 KiB (a page fault per op); mimalloc
// keeps them, for 11 % shorter steps with identical results.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` (15 in mimalloc v2's and v3's `mi_option_e`; libmimalloc-sys 0.1 has
/// no constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() {
    // mimalloc returns freed memory to the OS 10 ms after it is freed; a training step frees and
    // allocates the same large buffers every few ms, so they came back as fresh pages, zeroed by
    // the kernel on first touch. Never purged: page faults of 1,000 BasicMotions steps 3,232 →
    // 280, 2.5 % more steps/s (docs/benchmarks.md). The peak footprint is kept instead.
    // SAFETY: sets a process-wide integer option; mimalloc reads it when it next purges.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    keel_contract::pipe::exit_quietly_on_broken_pipe();
    let args = cli::Cli::parse();
    if let Err(e) = cli::run(args) {
        // Stopped on request with a checkpoint saved: not a failure, but not a finished run either.
        if let Some(i) = e.downcast_ref::<keel_trainer::run::Interrupted>() {
            eprintln!("{i}");
            std::process::exit(130);
        }
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
