//! A team's own gateway binary: the stock CLI with the `dictionary` backend linked in.
//!
//! This is all it takes to ship a custom backend: depend on its crate, name it once so the linker
//! keeps it (its `#[auth_backend]` registration then joins the registry), and hand over to the
//! gateway's CLI. YAML can now say `type: dictionary`.

use std::process::ExitCode;

use clap::Parser;
use gateway::cli::{Cli, execute};

use auth_backends as _;
use dictionary_backend as _;

fn main() -> ExitCode {
    match execute(Cli::parse()) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
