//! `keel`: train GANs that do not fall over.

use anyhow::Result;
use clap::Parser;

mod cli;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args = cli::Cli::parse();
    if let Err(e) = cli::run(args) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

#[allow(dead_code)]
fn _assert_result_type(_: Result<()>) {}
