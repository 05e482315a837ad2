//! The `authgate` binary.

use std::process::ExitCode;

use clap::Parser;
use gateway::cli::{Cli, execute};

// mimalloc: the proxy path allocates and frees small buffers on every request, and glibc's
// malloc was ~10% of its instructions (bench/RESULTS.md, "instructions per request"). Built
// with `no_thp`: with transparent huge pages, 1000 idle connections cost 47 MB instead of 29.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

// Linking the built-in backends registers their types (`inventory` needs the crate linked).
use auth_backends as _;

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", gateway::error_chain::Chain(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    let code = execute(cli)?;
    Ok(ExitCode::from(code))
}
