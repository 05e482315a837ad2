//! Command-line tests: one binary, one module per area (`tests/cli/*.rs`): the subcommands, the
//! shipped examples, and the README's generated block.

mod cli {
    mod commands;
    mod examples;
    mod readme;
}
